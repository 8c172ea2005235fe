/*
 * nodee: things every module may need to know about the daemon as a whole.
 */
#ifndef NODEE_H
#define NODEE_H

#ifndef NODEE_VERSION
#define NODEE_VERSION	"0.1.0"
#endif

#define NODEE_SHUTDOWN_GRACE_S	10

#endif
