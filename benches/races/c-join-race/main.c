/* A join race: main waits a moment for the worker instead of joining it,
   then reads its result. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static volatile long result;
static void *work(void *x) { (void)x; long s = 0; for (long i = 0; i < 20000; i++) s += i; result = s; return NULL; }
int main(int argc, char **argv) {
    pthread_t t;
    pthread_create(&t, NULL, work, NULL);
    usleep(argc > 1 ? atoi(argv[1]) : 1000);   /* BUG: should be pthread_join */
    if (result == 0) { printf("join-race: read the result before the worker wrote it\n"); return 1; }
    pthread_join(t, NULL);
    return 0;
}
