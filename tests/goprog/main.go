// dumpprog: a Go program whose only purpose is to produce real goroutine dumps, panics and
// fatal errors for gorescue's test fixtures. Standard library only; go.mod says go 1.19 so that
// every toolchain from Debian's 1.19 to 1.27 builds it.
//
//	dumpprog -mode wedge            goroutines blocked in many ways, "ready" on stdout, idle until killed
//	dumpprog -mode many -n 100000   N goroutines parked in a handful of distinct stacks
//	dumpprog -mode listing -wait 66s  wedge, then the pprof debug=2 listing on stdout after the wait
//	dumpprog -mode panic|panic-recovered|panic-nested|panic-nil|fatal-deadlock|fatal-mapwrites
//
// The generator (scripts/make-fixtures.sh) waits > 60 s after "ready" and then sends SIGQUIT, so
// that the headers carry "N minutes" (the runtime stamps waitsince during a GC stack scan, with the
// previous GC's time; hence: block first, then runtime.GC() a few times, then wait).
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"
)

var (
	mode     = flag.String("mode", "wedge", "wedge|many|listing|panic|panic-recovered|panic-nested|panic-nil|fatal-deadlock|fatal-mapwrites")
	n        = flag.Int("n", 1000, "goroutines for -mode many")
	wait     = flag.Duration("wait", 66*time.Second, "for -mode listing: how long to wait before writing the listing")
	noise    = flag.Int("noise", 0, "goroutines that write to -noise-fd in a tight loop (to make strace -f interleave)")
	noiseFD  = flag.Int("noise-fd", 1, "fd for -noise")
	noSpin   = flag.Bool("nospin", false, "wedge: leave out the busy-spinning goroutine")
	readyOut = os.Stdout
)

// Everything the wedge creates is kept reachable from here, so that no finalizer closes a pipe
// or connection the blocked goroutines rely on.
var keep []interface{}

var (
	forever  = make(chan int) // nobody ever sends or closes
	sendSink = make(chan int) // nobody ever receives
	spinSink uint64
)

func main() {
	flag.Parse()
	switch *mode {
	case "wedge":
		wedge()
		settle()
		ready()
		idle()
	case "many":
		many(*n)
		settle()
		ready()
		idle()
	case "listing":
		readyOut = os.Stderr
		wedge()
		settle()
		ready()
		time.Sleep(*wait)
		fmt.Fprintf(os.Stderr, "listing_time=%s\n", time.Now().Format(time.RFC3339Nano))
		pprof.Lookup("goroutine").WriteTo(os.Stdout, 2)
		os.Exit(0)
	case "panic":
		panicMode(false)
	case "panic-recovered":
		panicRecovered()
	case "panic-nested":
		panicNested()
	case "panic-nil":
		panicNil()
	case "fatal-deadlock":
		fatalDeadlock()
	case "fatal-mapwrites":
		fatalMapWrites()
	default:
		fmt.Fprintf(os.Stderr, "dumpprog: unknown -mode %q\n", *mode)
		os.Exit(64)
	}
}

// settle lets the goroutines reach their blocking points, then runs GCs so that their
// waitsince is stamped (needs two completed cycles; three to be safe).
func settle() {
	time.Sleep(300 * time.Millisecond)
	for i := 0; i < 3; i++ {
		runtime.GC()
		time.Sleep(50 * time.Millisecond)
	}
}

func ready() {
	fmt.Fprintln(readyOut, "ready")
}

// idle parks goroutine 1 in a plain channel receive (it is the "main" one a reader looks for).
func idle() {
	<-forever
}

// ---------------------------------------------------------------------------------------------
// wedge

func wedge() {
	// chan receive / chan send
	go blockChanRecv(forever)
	go blockChanSend(sendSink)
	// select with cases, select with no cases
	go blockSelect(forever, sendSink)
	go blockSelectNoCases()
	// nil channels
	go blockNilRecv()
	go blockNilSend()

	// sync.Mutex.Lock: main holds mu forever
	var mu sync.Mutex
	mu.Lock()
	keep = append(keep, &mu)
	go blockMutex(&mu)

	// sync.RWMutex: a reader holds it, a writer waits for the reader (RWMutex.Lock),
	// and a later reader waits for the pending writer (RWMutex.RLock).
	var rw sync.RWMutex
	rw.RLock()
	keep = append(keep, &rw)
	go blockRWLock(&rw)
	time.Sleep(50 * time.Millisecond)
	go blockRWRLock(&rw)

	// sync.WaitGroup.Wait
	var wg sync.WaitGroup
	wg.Add(1)
	keep = append(keep, &wg)
	go blockWaitGroup(&wg)

	// sync.Cond.Wait
	cond := sync.NewCond(&sync.Mutex{})
	keep = append(keep, cond)
	go blockCond(cond)

	// sleep
	go blockSleep(24 * time.Hour)

	// IO wait: a listener nobody dials, and an accepted connection nobody writes to
	ioWait()

	// syscall: a blocking read(2) on a pipe, through syscall.Read
	r, w, err := os.Pipe()
	if err != nil {
		panic(err)
	}
	keep = append(keep, r, w)
	go blockSyscallRead(int(r.Fd()))

	// locked to thread
	go blockLocked(forever)

	// deep recursion, then block
	go deep(300, forever)

	// generics
	b := &Box[string]{ch: make(chan string)}
	keep = append(keep, b)
	go b.Wait()
	go waitPair[int, string](make(chan Pair[int, string]))

	// nested closures
	go func() {
		outer := func(c chan int) {
			defer func() {}()
			inner := func() int {
				defer func() {}()
				return <-c
			}
			inner()
		}
		outer(forever)
	}()

	// inlined function that blocks
	go callsInlined(forever)

	// pprof labels (with a space in key and value, and one that needs quoting)
	go pprof.Do(context.Background(), pprof.Labels("req id", "a b", "worker", "w1"), func(ctx context.Context) {
		blockWithLabels(forever)
	})
	go pprof.Do(context.Background(), pprof.Labels("path", "/api/v1.2/x_y", "odd", `x], "y"`), func(ctx context.Context) {
		blockWithLabels(forever)
	})

	// busy spinner
	if !*noSpin {
		go spin()
	}

	// a chain: created by main.spawner in goroutine N
	go spawner(3, forever)

	// optional writers (strace -f interleaving)
	for i := 0; i < *noise; i++ {
		go noiseWriter(*noiseFD, i)
	}
}

//go:noinline
func blockChanRecv(c chan int) { <-c }

//go:noinline
func blockChanSend(c chan int) { c <- 1 }

//go:noinline
func blockSelect(a chan int, b chan int) {
	select {
	case <-a:
	case b <- 2:
	}
}

//go:noinline
func blockSelectNoCases() { select {} }

//go:noinline
func blockNilRecv() {
	var c chan int
	<-c
}

//go:noinline
func blockNilSend() {
	var c chan string
	c <- "never"
}

//go:noinline
func blockMutex(mu *sync.Mutex) { mu.Lock() }

//go:noinline
func blockRWLock(rw *sync.RWMutex) { rw.Lock() }

//go:noinline
func blockRWRLock(rw *sync.RWMutex) { rw.RLock() }

//go:noinline
func blockWaitGroup(wg *sync.WaitGroup) { wg.Wait() }

//go:noinline
func blockCond(c *sync.Cond) {
	c.L.Lock()
	for {
		c.Wait()
	}
}

//go:noinline
func blockSleep(d time.Duration) { time.Sleep(d) }

func ioWait() {
	l1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	keep = append(keep, l1, l2)
	go blockAccept(l1)
	accepted := make(chan net.Conn)
	go func() {
		c, err := l2.Accept()
		if err != nil {
			panic(err)
		}
		accepted <- c
		blockConnRead(c)
	}()
	client, err := net.Dial("tcp", l2.Addr().String())
	if err != nil {
		panic(err)
	}
	keep = append(keep, client, <-accepted)
}

//go:noinline
func blockAccept(l net.Listener) {
	c, err := l.Accept()
	if err == nil {
		c.Close()
	}
}

//go:noinline
func blockConnRead(c net.Conn) {
	buf := make([]byte, 512)
	c.Read(buf)
}

//go:noinline
func blockSyscallRead(fd int) {
	buf := make([]byte, 64)
	syscall.Read(fd, buf)
}

//go:noinline
func blockLocked(c chan int) {
	runtime.LockOSThread()
	<-c
}

//go:noinline
func deep(n int, c chan int) int {
	if n == 0 {
		return <-c
	}
	return deep(n-1, c) + 1
}

type Box[T any] struct{ ch chan T }

//go:noinline
func (b *Box[T]) Wait() T { return <-b.ch }

type Pair[K comparable, V any] struct {
	K K
	V V
}

//go:noinline
func waitPair[K comparable, V any](c chan Pair[K, V]) Pair[K, V] { return <-c }

func inlinedRecv(c chan int) int { return <-c }

//go:noinline
func callsInlined(c chan int) int { return inlinedRecv(c) + 1 }

//go:noinline
func blockWithLabels(c chan int) { <-c }

//go:noinline
func spin() {
	for {
		spinSink++
	}
}

//go:noinline
func spawner(depth int, c chan int) {
	if depth > 0 {
		go spawner(depth-1, c)
	}
	<-c
}

//go:noinline
func noiseWriter(fd int, i int) {
	line := []byte(fmt.Sprintf("noise from writer %d ........................................\n", i))
	buf := make([]byte, 0, 65536)
	for len(buf)+len(line) <= cap(buf) {
		buf = append(buf, line...)
	}
	for {
		syscall.Write(fd, buf)
	}
}

// ---------------------------------------------------------------------------------------------
// many

func many(count int) {
	var mu sync.Mutex
	mu.Lock()
	keep = append(keep, &mu)
	for i := 0; i < count; i++ {
		go manyLayer1(i%4, &mu)
	}
	// wait until they are all parked
	for runtime.NumGoroutine() < count {
		time.Sleep(10 * time.Millisecond)
	}
}

//go:noinline
func manyLayer1(kind int, mu *sync.Mutex) { manyLayer2(kind, mu) }

//go:noinline
func manyLayer2(kind int, mu *sync.Mutex) { manyLayer3(kind, mu) }

//go:noinline
func manyLayer3(kind int, mu *sync.Mutex) {
	switch kind {
	case 0:
		manyServe(forever)
	case 1:
		manyPoll(forever, sendSink)
	default:
		manyLayer4(kind, mu)
	}
}

//go:noinline
func manyLayer4(kind int, mu *sync.Mutex) {
	if kind == 2 {
		manyLock(mu)
	} else {
		manyNap()
	}
}

//go:noinline
func manyServe(c chan int) { manyHandle(c) }

//go:noinline
func manyHandle(c chan int) { <-c }

//go:noinline
func manyPoll(a, b chan int) {
	select {
	case <-a:
	case b <- 1:
	}
}

//go:noinline
func manyLock(mu *sync.Mutex) { mu.Lock() }

//go:noinline
func manyNap() { time.Sleep(48 * time.Hour) }

// ---------------------------------------------------------------------------------------------
// panics and fatal errors

type request struct {
	ID   int
	Path string
}

type handler struct{ name string }

func (h *handler) serve(r *request) {
	h.process(r, []int{1, 2, 3})
}

//go:noinline
func (h *handler) process(r *request, weights []int) {
	if r.ID == 42 {
		panic(fmt.Errorf("handler %s: cannot process request %d (%s)", h.name, r.ID, r.Path))
	}
}

// panicMode: a worker goroutine panics while others are blocked (GOTRACEBACK=all shows them).
func panicMode(bool) {
	go blockChanRecv(forever)
	go blockSleep(time.Hour)
	done := make(chan int)
	go func() {
		h := &handler{name: "api"}
		h.serve(&request{ID: 42, Path: "/v1/items"})
		close(done)
	}()
	<-done
}

//go:noinline
func panicRecovered() {
	defer func() {
		if r := recover(); r != nil {
			panic(r) // re-panic with the same value
		}
	}()
	step1()
}

//go:noinline
func step1() { panic("first failure") }

//go:noinline
func panicNested() {
	defer cleanup()
	panic("original problem")
}

//go:noinline
func cleanup() {
	panic(fmt.Sprintf("cleanup failed too: %d", 7))
}

type node struct {
	next *node
	val  int
}

//go:noinline
func walk(n *node) int { return n.next.val }

func panicNil() {
	fmt.Println(walk(&node{}))
}

func fatalDeadlock() {
	var mu sync.Mutex
	mu.Lock()
	go blockMutex(&mu)
	go blockChanRecv(make(chan int))
	go blockSelect(make(chan int), make(chan int))
	time.Sleep(100 * time.Millisecond)
	// Every goroutine is now blocked and no timer is pending.
	<-make(chan struct{})
}

func fatalMapWrites() {
	m := map[int]int{}
	for i := 0; i < 4; i++ {
		go func(i int) {
			for j := 0; ; j++ {
				m[j%1000] = i
			}
		}(i)
	}
	for {
		time.Sleep(time.Second)
	}
}
