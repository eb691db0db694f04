/*
 * hm_work.h - threads that work through an array while it is still being filled.
 *
 * A producer (the calling thread) publishes items [0, n) as it makes them;
 * the threads take them a chunk at a time, in order, as soon as they are
 * published, and the producer joins in once it is done producing.  So the
 * work on the first items overlaps with reading the last ones.
 *
 *	hm_work_start(&w, jobs, 32, body, arg);
 *	for (...) { make item i; if ((i + 1) % 32 == 0) hm_work_publish(&w, i + 1, 0); }
 *	hm_work_publish(&w, n, 1);
 *	hm_work_finish(&w);
 *
 * where body(arg) loops `while (hm_work_take(w, &i, &end))` over [i, end).
 */
#ifndef HM_WORK_H
#define HM_WORK_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>

#define HM_WORK_MAX 64

struct hm_work {
	atomic_size_t next, ready;
	atomic_int complete, stop;
	size_t chunk;
	pthread_mutex_t mu;
	pthread_cond_t published;
	pthread_t thread[HM_WORK_MAX];
	long threads;
	cpu_set_t cpus; /* where the threads may run */
	void (*body)(void *arg);
	void *arg;
};

/*
 * Start jobs - 1 threads (the caller is the last one, in hm_work_finish),
 * each running body(arg); they take chunk items at a time.  Each thread is
 * started on a core other than the caller's: left to itself the scheduler
 * puts a new thread beside its parent, and on two cores it was seen to leave
 * both there for a whole run.  A thread that cannot be created is done
 * without; the work is still done.
 */
void hm_work_start(struct hm_work *w, long jobs, size_t chunk, void (*body)(void *arg), void *arg);

/* Publish items [0, n); complete: there are no more. */
void hm_work_publish(struct hm_work *w, size_t n, int complete);

/*
 * The next chunk to work on, [*begin, *end), waiting until it is published;
 * 0 once every item is taken, or after hm_work_stop.
 */
int hm_work_take(struct hm_work *w, size_t *begin, size_t *end);

/* The caller runs body too, then waits for the threads. */
void hm_work_finish(struct hm_work *w);

/* Call the threads off (they finish the chunk in hand and take no more), and wait for them. */
void hm_work_stop(struct hm_work *w);

#endif
