// Check-then-act on a concurrent map: Load, then Store, not LoadOrStore;
// two goroutines both initialise the same key.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	work, _ := strconv.Atoi(os.Args[1])
	// The second caller arrives this many microseconds after the first.
	gap, _ := strconv.Atoi(os.Args[2])
	var cache sync.Map
	var inits int32
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, ok := cache.Load("config"); !ok {
				s := 0
				for i := 0; i < work; i++ {
					s += i
				}
				atomic.AddInt32(&inits, 1)
				cache.Store("config", s)
			}
		}()
		time.Sleep(time.Duration(gap) * time.Microsecond)
	}
	wg.Wait()
	if inits > 1 {
		fmt.Printf("double-init: the config was made %d times\n", inits)
		os.Exit(1)
	}
}
