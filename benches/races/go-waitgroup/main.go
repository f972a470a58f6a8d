// A WaitGroup race: Add is called inside the goroutine, so Wait can return
// before a worker has even registered.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	// The head start the goroutines usually need to register.
	us, _ := strconv.Atoi(os.Args[2])
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for i := 0; i < n; i++ {
		go func() {
			wg.Add(1) // BUG: belongs before the go statement
			defer wg.Done()
			mu.Lock()
			done++
			mu.Unlock()
		}()
	}
	time.Sleep(time.Duration(us) * time.Microsecond)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if done != n {
		fmt.Printf("waitgroup: Wait returned with %d of %d done\n", done, n)
		os.Exit(1)
	}
}
