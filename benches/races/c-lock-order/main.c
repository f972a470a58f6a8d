/* Lock-order inversion: one thread takes a then b, the other b then a. */
#include <pthread.h>
#include <stdlib.h>
static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER, b = PTHREAD_MUTEX_INITIALIZER;
static long spin;
static void hold(void) { for (volatile long i = 0; i < spin; i++) {} }
static void *ab(void *x) { (void)x; pthread_mutex_lock(&a); hold(); pthread_mutex_lock(&b); pthread_mutex_unlock(&b); pthread_mutex_unlock(&a); return NULL; }
static void *ba(void *x) { (void)x; pthread_mutex_lock(&b); hold(); pthread_mutex_lock(&a); pthread_mutex_unlock(&a); pthread_mutex_unlock(&b); return NULL; }
int main(int argc, char **argv) {
    spin = argc > 1 ? atol(argv[1]) : 100;
    pthread_t t1, t2;
    pthread_create(&t1, NULL, ab, NULL);
    pthread_create(&t2, NULL, ba, NULL);
    pthread_join(t1, NULL); pthread_join(t2, NULL);
    return 0;
}
