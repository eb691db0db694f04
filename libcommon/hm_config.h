/*
 * hm_config.h - lock settings from $HEIMDAL_HOME/lock_config.json.
 *
 *   {"lock_type": "Hybrid", "timeout": 600, "detect_stale": true,
 *    "retry": {"attempts": 5, "delay_seconds": 3, "exponential_backoff": true},
 *    "remote_timeout": 30}
 *
 * Every key is optional; lock_type is case-insensitive (Hybrid, Local,
 * Disabled).  Unknown keys are refused so a typo is not silently ignored.
 */
#ifndef HM_CONFIG_H
#define HM_CONFIG_H

enum hm_lock_type { HM_LOCK_HYBRID, HM_LOCK_LOCAL, HM_LOCK_DISABLED };

/*
 * The longest the retries of --wait may sleep in all (seconds): a
 * configuration whose retry.attempts and retry.delay_seconds (doubling with
 * exponential_backoff) add up to more is refused, naming .retry.
 */
#define HM_CONFIG_WAIT_MAX 600

struct hm_lock_config {
	enum hm_lock_type lock_type; /* default HM_LOCK_HYBRID */
	long timeout;                /* seconds; default 300 */
	int detect_stale;            /* default 1 */
	long retry_attempts;         /* default 3 */
	double retry_delay;          /* seconds; default 1 */
	int retry_backoff;           /* default 1 */
	long remote_timeout;         /* seconds; default 30 */
};

/*
 * Load the configuration (defaults when the file is absent).  Returns 0, or
 * -1 after an error naming the file and field (hm_fail(HM_EXIT_USAGE), or
 * HM_EXIT_ENV when unreadable).  The result is cached for the process.
 */
int hm_config_load(struct hm_lock_config *cfg);

/* "hybrid", "local", "disabled". */
const char *hm_lock_type_name(enum hm_lock_type t);

#endif
