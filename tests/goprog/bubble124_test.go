//go:build go1.24 && !go1.25 && goexperiment.synctest

package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// (Go 1.24 with GOEXPERIMENT=synctest: synctest.Run.) TestBubble parks goroutines inside a testing/synctest bubble (durably and not durably
// blocked), prints "ready" and waits to be killed with SIGQUIT by the fixture generator
// (or by itself after DUMPPROG_SELF_QUIT, e.g. "66s"). Not a real test: it never passes.
func TestBubble(t *testing.T) {
	if os.Getenv("DUMPPROG_BUBBLE") == "" {
		t.Skip("fixture generator only (set DUMPPROG_BUBBLE=1)")
	}
	go outsideBubble()
	synctest.Run(func() {
		ch := make(chan int)
		var mu sync.Mutex
		mu.Lock()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { <-ch }()                  // chan receive (durable)
		go func() { time.Sleep(time.Hour) }() // sleep (durable); fake time never advances
		go func() { mu.Lock() }()             // sync.Mutex.Lock: not durable, keeps the bubble alive
		go func() { wg.Wait() }()             // sync.WaitGroup.Wait (durable)
		go func() {
			select {
			case <-ch:
			case ch <- 1:
			}
		}()
		go func() {
			func() { <-ch }() // nested closure
		}()
		<-ch
	})
}

func outsideBubble() {
	time.Sleep(300 * time.Millisecond)
	for i := 0; i < 3; i++ {
		runtime.GC()
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Println("ready")
	if d, err := time.ParseDuration(os.Getenv("DUMPPROG_SELF_QUIT")); err == nil {
		time.Sleep(d)
		selfQuit()
	}
	if os.Getenv("DUMPPROG_BUBBLE") == "deadlock" {
		// Return: nothing outside the bubble is left with a real timer, so the runtime
		// reports "all goroutines are asleep - deadlock!" with the bubble's goroutines.
		return
	}
	for {
		time.Sleep(time.Hour) // a real timer keeps the runtime's deadlock detector quiet
	}
}
