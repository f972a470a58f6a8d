/* Atomicity violation: two threads add to a counter without a lock. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
static volatile long counter;
static long n;
static void *work(void *arg) { (void)arg; for (long i = 0; i < n; i++) counter = counter + 1; return NULL; }
int main(int argc, char **argv) {
    n = argc > 1 ? atol(argv[1]) : 2000;
    pthread_t a, b;
    pthread_create(&a, NULL, work, NULL);
    pthread_create(&b, NULL, work, NULL);
    pthread_join(a, NULL); pthread_join(b, NULL);
    if (counter != 2 * n) { printf("counter: lost %ld updates\n", 2 * n - counter); return 1; }
    return 0;
}
