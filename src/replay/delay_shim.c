/* bugpack's `delay` timing: loaded with LD_PRELOAD into every dynamically
   linked process of a run, it sleeps for short random times at the calls
   where threads meet (thread start, mutex lock and unlock, condition
   variables, semaphores, join), as Cuzz does, and can hold new threads until
   their siblings have all been created so that they start together, as
   jcstress's actors do. A race whose window is a few microseconds wide at one
   of those calls then opens in a good share of runs instead of one in
   thousands. Delays add up to at most about a quarter of a process's time.

   BUGPACK_DELAY="SEED ONE_IN MAX_US ALIGN_US": one call in ONE_IN (at
   random, from SEED) sleeps 1..MAX_US microseconds; a new thread waits until
   no thread has been created for ALIGN_US microseconds (0: it does not wait).
   BUGPACK_DELAY_STATS: a file each process appends "NAME loaded" to when
   it starts and "NAME CALLS DELAYS DELAYED_US ALIGNED" when it exits.

   Nothing here allocates except the start record of a new thread, and
   nothing is read from the process but those two variables. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char *program_invocation_short_name;

static int active;
static uint64_t seed;
static uint64_t one_in = 1;
static uint64_t max_us = 1;
static uint64_t align_ns;
static atomic_ulong calls, delays, delayed_us, aligned, threads_seen;
static atomic_llong last_create_ns;
static long long started_ns;

static __thread uint64_t rng;

static int (*real_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
static int (*real_join)(pthread_t, void **);
static int (*real_lock)(pthread_mutex_t *);
static int (*real_unlock)(pthread_mutex_t *);
static int (*real_signal)(pthread_cond_t *);
static int (*real_broadcast)(pthread_cond_t *);
static int (*real_wait)(pthread_cond_t *, pthread_mutex_t *);
static int (*real_timedwait)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
static int (*real_sem_wait)(sem_t *);
static int (*real_sem_timedwait)(sem_t *, const struct timespec *);
static int (*real_sem_clockwait)(sem_t *, clockid_t, const struct timespec *);
static int (*real_sem_post)(sem_t *);

/* The condition-variable functions have two versions in glibc, and plain
   dlsym can give the old one; ask for the current one first. */
static void *next_symbol(const char *name, int versioned) {
    void *f = NULL;
#if defined(__x86_64__)
    if (versioned) f = dlvsym(RTLD_NEXT, name, "GLIBC_2.3.2");
#else
    (void)versioned;
#endif
    if (!f) f = dlsym(RTLD_NEXT, name);
    return f;
}

static void resolve(void) {
    real_create = next_symbol("pthread_create", 0);
    real_join = next_symbol("pthread_join", 0);
    real_lock = next_symbol("pthread_mutex_lock", 0);
    real_unlock = next_symbol("pthread_mutex_unlock", 0);
    real_signal = next_symbol("pthread_cond_signal", 1);
    real_broadcast = next_symbol("pthread_cond_broadcast", 1);
    real_wait = next_symbol("pthread_cond_wait", 1);
    real_timedwait = next_symbol("pthread_cond_timedwait", 1);
    real_sem_wait = next_symbol("sem_wait", 0);
    real_sem_timedwait = next_symbol("sem_timedwait", 0);
    real_sem_clockwait = next_symbol("sem_clockwait", 0);
    real_sem_post = next_symbol("sem_post", 0);
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* SplitMix64: a thread's stream, seeded from the run's seed, the process
   and the thread's order of arrival. */
static uint64_t next_random(void) {
    if (rng == 0) {
        uint64_t n = atomic_fetch_add(&threads_seen, 1) + 1;
        rng = seed ^ ((uint64_t)getpid() << 32) ^ (n * 0x9E3779B97F4A7C15ULL);
        if (rng == 0) rng = 1;
    }
    uint64_t z = (rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Waits `ns`: a sleep for most of it, a spin for the end, since a sleep
   overshoots by the timer slack (50 us by default). */
static void wait_until(long long deadline) {
    for (;;) {
        long long left = deadline - now_ns();
        if (left <= 0) return;
        if (left > 200000) {
            struct timespec t = {0, left - 100000};
            nanosleep(&t, NULL);
        } else {
            sched_yield();
        }
    }
}

/* Leaves errno as it was: a call's result is the caller's, not ours. */
static void maybe_delay(void) {
    if (!active) return;
    atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
    if (next_random() % one_in != 0) return;
    int saved = errno;
    uint64_t us = 1 + next_random() % max_us;
    /* A program that makes many such calls (an interpreter's lock, taken
       at every switch) is never slowed by more than about a quarter. */
    long long spent = (long long)atomic_load_explicit(&delayed_us, memory_order_relaxed) * 1000;
    if (spent * 4 > now_ns() - started_ns + 5000000LL) {
        errno = saved;
        return;
    }
    atomic_fetch_add_explicit(&delays, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&delayed_us, us, memory_order_relaxed);
    wait_until(now_ns() + (long long)us * 1000);
    errno = saved;
}

/* One line to BUGPACK_DELAY_STATS, in a single append. */
static void report(const char *line, int n) {
    const char *path = getenv("BUGPACK_DELAY_STATS");
    if (!path || n <= 0) return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return;
    ssize_t ignored = write(fd, line, (size_t)n);
    (void)ignored;
    close(fd);
}

__attribute__((constructor)) static void start(void) {
    resolve();
    started_ns = now_ns();
    const char *spec = getenv("BUGPACK_DELAY");
    if (!spec) return;
    unsigned long long s = 0, one = 1, max = 1, align = 0;
    if (sscanf(spec, "%llu %llu %llu %llu", &s, &one, &max, &align) != 4) return;
    seed = s;
    one_in = one ? one : 1;
    max_us = max ? max : 1;
    align_ns = align * 1000;
    active = 1;
    /* A process killed at a hang never reaches its destructor: this line
       still says it ran with the library. */
    char line[128];
    int n = snprintf(line, sizeof line, "%.64s loaded\n", program_invocation_short_name);
    if ((size_t)n < sizeof line) report(line, n);
}

__attribute__((destructor)) static void finish(void) {
    if (!active) return;
    char line[256];
    int n = snprintf(line, sizeof line, "%.64s %lu %lu %lu %lu\n",
                     program_invocation_short_name, atomic_load(&calls),
                     atomic_load(&delays), atomic_load(&delayed_us), atomic_load(&aligned));
    if ((size_t)n < sizeof line) report(line, n);
}

struct start_record {
    void *(*routine)(void *);
    void *arg;
};

/* Holds a new thread until the burst of creations it came in is over (no
   thread created for ALIGN_US), then lets it go with its siblings. The
   first held thread keeps the time; shortly before the release it wakes the
   others with one futex broadcast, and all spin to the same instant, so
   that they start within a microsecond or so of each other even when
   waking takes tens of microseconds. */
#define WAKE_AHEAD_NS 150000LL
static atomic_int release_generation;
static atomic_int keeper;
static atomic_llong release_at_ns;

static void hold_until_siblings_start(void) {
    int generation = atomic_load(&release_generation);
    int none = 0;
    if (atomic_compare_exchange_strong(&keeper, &none, 1)) {
        /* Bounded too: a program that never stops creating threads, or
           creates them only as this one progresses, is held 50 ms at most. */
        long long latest = now_ns() + 50000000LL;
        long long release;
        for (;;) {
            release = atomic_load(&last_create_ns) + (long long)align_ns;
            if (release > latest) release = latest;
            long long left = release - WAKE_AHEAD_NS - now_ns();
            if (left <= 0) break;
            struct timespec t = {left / 1000000000LL, left % 1000000000LL};
            nanosleep(&t, NULL);
        }
        atomic_store(&release_at_ns, release);
        atomic_fetch_add(&release_generation, 1);
        atomic_store(&keeper, 0);
        syscall(SYS_futex, &release_generation, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    } else {
        /* Bounded: a keeper that is itself held up never holds us long. */
        struct timespec most = {0, 50000000};
        syscall(SYS_futex, &release_generation, FUTEX_WAIT_PRIVATE, generation, &most, NULL, 0);
    }
    long long release = atomic_load(&release_at_ns);
    while (now_ns() < release) {
    }
    atomic_fetch_add_explicit(&aligned, 1, memory_order_relaxed);
}

static void *trampoline(void *p) {
    struct start_record r = *(struct start_record *)p;
    free(p);
    if (active && align_ns > 0) {
        int saved = errno;
        hold_until_siblings_start();
        errno = saved;
    }
    maybe_delay();
    return r.routine(r.arg);
}

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*routine)(void *), void *arg) {
    if (!real_create) resolve();
    if (!active) return real_create(t, attr, routine, arg);
    struct start_record *r = malloc(sizeof *r);
    if (!r) return real_create(t, attr, routine, arg);
    r->routine = routine;
    r->arg = arg;
    atomic_store(&last_create_ns, now_ns());
    int e = real_create(t, attr, trampoline, r);
    if (e != 0) {
        free(r);
        return e;
    }
    atomic_store(&last_create_ns, now_ns());
    maybe_delay();
    return 0;
}

int pthread_join(pthread_t t, void **ret) {
    if (!real_join) resolve();
    maybe_delay();
    return real_join(t, ret);
}

int pthread_mutex_lock(pthread_mutex_t *m) {
    if (!real_lock) resolve();
    maybe_delay();
    int e = real_lock(m);
    maybe_delay();
    return e;
}

int pthread_mutex_unlock(pthread_mutex_t *m) {
    if (!real_unlock) resolve();
    int e = real_unlock(m);
    maybe_delay();
    return e;
}

int pthread_cond_signal(pthread_cond_t *c) {
    if (!real_signal) resolve();
    maybe_delay();
    return real_signal(c);
}

int pthread_cond_broadcast(pthread_cond_t *c) {
    if (!real_broadcast) resolve();
    maybe_delay();
    return real_broadcast(c);
}

int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m) {
    if (!real_wait) resolve();
    maybe_delay();
    return real_wait(c, m);
}

int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *t) {
    if (!real_timedwait) resolve();
    maybe_delay();
    return real_timedwait(c, m, t);
}

int sem_wait(sem_t *s) {
    if (!real_sem_wait) resolve();
    maybe_delay();
    int e = real_sem_wait(s);
    maybe_delay();
    return e;
}

int sem_timedwait(sem_t *s, const struct timespec *t) {
    if (!real_sem_timedwait) resolve();
    maybe_delay();
    int e = real_sem_timedwait(s, t);
    maybe_delay();
    return e;
}

int sem_clockwait(sem_t *s, clockid_t clock, const struct timespec *t) {
    if (!real_sem_clockwait) resolve();
    maybe_delay();
    int e = real_sem_clockwait(s, clock, t);
    maybe_delay();
    return e;
}

int sem_post(sem_t *s) {
    if (!real_sem_post) resolve();
    int e = real_sem_post(s);
    maybe_delay();
    return e;
}
