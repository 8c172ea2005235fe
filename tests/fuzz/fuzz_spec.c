/*
 * fuzz_spec: start specs as PUT /api/v1/services/{c} takes them: the body
 * parsed as http.c does, then service_spec_check(), which fills in every
 * default.  A spec it accepts is what the store keeps and the supervisor
 * runs, so checking it again must accept it unchanged; the API shows it
 * through prepare_spec_redact().
 */
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "config.h"
#include "log.h"
#include "prepare.h"
#include "service.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct config	cf;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	config_defaults(&cf);
	log_set_level(LOG_LVL_ERROR);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t	 je;
	json_t		*body, *spec, *again, *shown;
	char		 err[1024] = "";

	if ((body = json_loadb((const char *)data, size,
	    JSON_REJECT_DUPLICATES, &je)) == NULL)
		return 0;
	if ((spec = service_spec_check(&cf, body, err, sizeof(err))) == NULL) {
		if (err[0] == '\0')
			abort();	/* a refusal always says why */
		json_decref(body);
		return 0;
	}
	if ((again = service_spec_check(&cf, spec, err, sizeof(err))) ==
	    NULL || !json_equal(again, spec))
		abort();
	shown = prepare_spec_redact(spec);
	free(json_dumps(shown, JSON_COMPACT));
	(void)service_caps(spec);
	(void)prepare_needed(spec);
	json_decref(shown);
	json_decref(again);
	json_decref(spec);
	json_decref(body);
	return 0;
}
