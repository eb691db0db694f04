#include "hm_work.h"

/* A thread starts on the core it was sent to, then goes where the scheduler likes. */
static void *
thread_main(void *arg)
{
	struct hm_work *w = arg;

	sched_setaffinity(0, sizeof(w->cpus), &w->cpus);
	w->body(w->arg);
	return NULL;
}

void
hm_work_start(struct hm_work *w, long jobs, size_t chunk, void (*body)(void *arg), void *arg)
{
	int here = sched_getcpu(), cpu = here, ncpu;
	pthread_attr_t attr;

	atomic_store(&w->next, 0);
	atomic_store(&w->ready, 0);
	atomic_store(&w->complete, 0);
	atomic_store(&w->stop, 0);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->published, NULL);
	w->chunk = chunk ? chunk : 1;
	w->body = body;
	w->arg = arg;
	if (sched_getaffinity(0, sizeof(w->cpus), &w->cpus) < 0)
		CPU_ZERO(&w->cpus);
	ncpu = CPU_COUNT(&w->cpus);
	pthread_attr_init(&attr);
	for (w->threads = 0; w->threads < jobs - 1 && w->threads < HM_WORK_MAX; w->threads++) {
		cpu_set_t one;

		/* The next core allowed, round the ring, the caller's last. */
		if (ncpu > 1 && here >= 0) {
			do
				cpu = (cpu + 1) % CPU_SETSIZE;
			while (!CPU_ISSET((size_t)cpu, &w->cpus));
			CPU_ZERO(&one);
			CPU_SET((size_t)cpu, &one);
			pthread_attr_setaffinity_np(&attr, sizeof(one), &one);
		}
		if (pthread_create(&w->thread[w->threads], &attr, thread_main, w) != 0)
			break;
	}
	pthread_attr_destroy(&attr);
}

void
hm_work_publish(struct hm_work *w, size_t n, int complete)
{
	pthread_mutex_lock(&w->mu);
	atomic_store_explicit(&w->ready, n, memory_order_release);
	if (complete)
		atomic_store_explicit(&w->complete, 1, memory_order_release);
	pthread_cond_broadcast(&w->published);
	pthread_mutex_unlock(&w->mu);
}

int
hm_work_take(struct hm_work *w, size_t *begin, size_t *end)
{
	size_t at = atomic_fetch_add(&w->next, w->chunk);

	for (;;) {
		int complete = atomic_load_explicit(&w->complete, memory_order_acquire);
		size_t ready = atomic_load_explicit(&w->ready, memory_order_acquire);

		if (atomic_load(&w->stop))
			return 0;
		if (at + w->chunk <= ready || (complete && at < ready)) {
			*begin = at;
			*end = at + w->chunk < ready ? at + w->chunk : ready;
			return 1;
		}
		if (complete)
			return 0;
		pthread_mutex_lock(&w->mu);
		while (!atomic_load(&w->complete) && !atomic_load(&w->stop) &&
		       atomic_load(&w->ready) < at + w->chunk)
			pthread_cond_wait(&w->published, &w->mu);
		pthread_mutex_unlock(&w->mu);
	}
}

void
hm_work_finish(struct hm_work *w)
{
	w->body(w->arg);
	for (long i = 0; i < w->threads; i++)
		pthread_join(w->thread[i], NULL);
	w->threads = 0;
	pthread_cond_destroy(&w->published);
	pthread_mutex_destroy(&w->mu);
}

void
hm_work_stop(struct hm_work *w)
{
	pthread_mutex_lock(&w->mu);
	atomic_store(&w->stop, 1);
	pthread_cond_broadcast(&w->published);
	pthread_mutex_unlock(&w->mu);
	hm_work_finish(w);
}
