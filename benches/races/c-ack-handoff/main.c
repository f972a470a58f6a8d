/* Ack before hand-off: the consumer acknowledges each message, then puts it
   in a one-slot mailbox for the worker; when the worker has not emptied the
   slot yet, the message is overwritten: acknowledged and lost. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static atomic_long slot = -1, done_count;
static atomic_int finished;
static void *worker(void *x) {
    (void)x;
    while (!atomic_load(&finished) || atomic_load(&slot) >= 0) {
        long m = atomic_exchange(&slot, -1);
        if (m >= 0) atomic_fetch_add(&done_count, 1);
    }
    return NULL;
}
int main(int argc, char **argv) {
    long n = argc > 2 ? atol(argv[2]) : 200, acked = 0;
    /* usage: prog GAP_US [MESSAGES] */
    int gap = argc > 1 ? atoi(argv[1]) : 200;
    pthread_t w;
    pthread_create(&w, NULL, worker, NULL);
    for (long i = 0; i < n; i++) {
        acked++;                                /* BUG: acked before handed off */
        atomic_store(&slot, i);                 /* overwrites an unread message */
        usleep(gap);
    }
    atomic_store(&finished, 1);
    pthread_join(w, NULL);
    if (atomic_load(&done_count) != acked) {
        printf("ack-handoff: %ld acknowledged, %ld done\n", acked, atomic_load(&done_count));
        return 1;
    }
    return 0;
}
