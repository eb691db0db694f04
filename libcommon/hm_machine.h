/*
 * hm_machine.h - where heimdal keeps its files, and who this machine is.
 */
#ifndef HM_MACHINE_H
#define HM_MACHINE_H

#include <jv.h>

/* $HEIMDAL_HOME, else $HOME/.heimdal.  Static storage; dies if neither is set. */
const char *hm_home(void);

/* hm_home()/name in a new buffer. */
char *hm_home_path(const char *name);

/* Create hm_home() (mode 0700) if missing.  0 or -1 (error printed). */
int hm_home_ensure(void);

/* A random (version 4) UUID from the kernel's RNG (getrandom(2)) into buf[37]. */
int hm_uuid_v4(char buf[37]);

/*
 * This machine's id: the UUID in $HEIMDAL_HOME/machine-id, generated once
 * (creating $HEIMDAL_HOME) and never changed.  Static storage; NULL after an
 * error is printed.
 */
const char *hm_machine_id(void);

/* Hostname ($HEIMDAL_HOSTNAME overrides), user, os ("linux", "darwin"), arch. */
const char *hm_machine_hostname(void);
const char *hm_machine_user(void);
const char *hm_machine_os(void);
const char *hm_machine_arch(void);

/*
 * What a tool records about this machine must be what the next tool reads:
 * 0, or -1 after an error naming the source (HEIMDAL_HOSTNAME, USER) when
 * the hostname or the user holds a control character (hm_fail(HM_EXIT_USAGE)).
 */
int hm_machine_check(void);

/* 0, or -1 after "what: 's' holds a control character" (HM_EXIT_USAGE). */
int hm_text_check(const char *what, const char *s);

/* {"id","hostname","os","arch","user"}; invalid (message) if the id fails. */
jv hm_machine_info(void);

#endif
