/*
 * machine: reads /proc/meminfo, sysinfo(2), getloadavg(3) and uname(2).
 * Nothing is cached: the facts are cheap to read and must be current.
 */
#include <sys/sysinfo.h>
#include <sys/utsname.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine.h"

static int	machine_meminfo(long long *, long long *);

/* Returns a new JSON object; the caller owns it (json_decref). */
json_t *
machine_facts(void)
{
	struct utsname	 un;
	struct sysinfo	 si;
	double		 load[3] = { 0, 0, 0 };
	long long	 total = 0, avail = 0;
	json_t		*o;

	o = json_object();
	json_object_set_new(o, "cores",
	    json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
	if (machine_meminfo(&total, &avail) == 0) {
		json_object_set_new(o, "memory_total_bytes",
		    json_integer(total));
		json_object_set_new(o, "memory_available_bytes",
		    json_integer(avail));
	}
	if (getloadavg(load, 3) == 3)
		json_object_set_new(o, "load", json_pack("[fff]", load[0],
		    load[1], load[2]));
	if (sysinfo(&si) == 0)
		json_object_set_new(o, "uptime_s", json_integer(si.uptime));
	if (uname(&un) == 0)
		json_object_set_new(o, "kernel", json_pack("{s:s, s:s, s:s}",
		    "name", un.sysname, "release", un.release,
		    "machine", un.machine));
	return o;
}

static int
machine_meminfo(long long *total, long long *avail)
{
	FILE		*fp;
	char		 line[256];
	long long	 kb;
	int		 found = 0;

	if ((fp = fopen("/proc/meminfo", "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "MemTotal: %lld kB", &kb) == 1) {
			*total = kb * 1024;
			found |= 1;
		} else if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) {
			*avail = kb * 1024;
			found |= 2;
		}
	}
	fclose(fp);
	return found == 3 ? 0 : -1;
}
