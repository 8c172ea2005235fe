/*
 * fuzz_template: the template renderer of a prepare step's "template"
 * (and of URLs in a spec), prepare_render(), with the names a service
 * has.  Its callers never pass a NUL byte (a template with one is not a
 * text file), so neither does this.  Text without "${" comes out as it
 * went in.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "coord.h"
#include "prepare.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct coord		c;
static struct prepare_vars	v;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char	err[256];

	(void)argc;
	(void)argv;
	if (coord_parse("web-3.tplsvc.alice.cell", &c, err, sizeof(err)) != 0)
		abort();
	v.c = &c;
	v.node = "node-1";
	v.runtime_dir = "/var/lib/nodee/runtime/cell/alice/tplsvc/web-3";
	v.artifact_dir = "/var/lib/nodee/software/com.test/prep/1";
	v.options = json_pack("{s:s, s:s}", "--port", "8081", "name", "");
	v.env = json_pack("{s:s}", "GREETING", "hello ${coordinate}");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*out = NULL, err[512] = "";
	size_t	 olen = 0;

	if (memchr(data, '\0', size) != NULL)
		return 0;
	if (prepare_render((const char *)data, size, &v, &out, &olen, err,
	    sizeof(err)) != 0) {
		if (out != NULL || err[0] == '\0')
			abort();
		return 0;
	}
	if (strlen(out) != olen || (memmem(data, size, "${", 2) == NULL &&
	    (olen != size || memcmp(out, data, size) != 0)))
		abort();
	free(out);
	return 0;
}
