// serveprog: a small Go service for gorescue's --keep-running tests and benchmark. Standard
// library only; builds with Go 1.19 and newer.
//
//	serveprog -n 10000 -heap 1024 -http ADDRFILE -pprof
//
// It parks -n goroutines in main.park, keeps -heap MiB of live heap (every page written),
// and with -http serves on 127.0.0.1:0 (address written to ADDRFILE):
//
//	/          "pong"
//	/stall     the longest gap, in microseconds, that a goroutine sleeping 1 ms at a time saw
//	           since the previous /stall (a stop of the process or of the Go world shows here)
//	/debug/pprof/...  net/http/pprof's handlers, with -pprof
//
// -notify catches SIGQUIT with signal.Notify (the runtime then prints no dump). -silent adds a
// TCP listener on 127.0.0.1 that accepts connections and never answers.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

var keep [][]byte

var keepConns []net.Conn

func park(c chan int) { <-c }

// maxGap is the longest wake-up gap (ns) of the monitor since the last /stall.
var maxGap int64

func monitor() {
	last := time.Now()
	for {
		time.Sleep(time.Millisecond)
		now := time.Now()
		gap := int64(now.Sub(last))
		last = now
		for {
			old := atomic.LoadInt64(&maxGap)
			if gap <= old || atomic.CompareAndSwapInt64(&maxGap, old, gap) {
				break
			}
		}
	}
}

func main() {
	n := flag.Int("n", 10000, "goroutines parked in main.park")
	mib := flag.Int("heap", 1024, "MiB of live heap")
	notify := flag.Bool("notify", false, "catch SIGQUIT with signal.Notify")
	addrFile := flag.String("http", "", "serve HTTP on 127.0.0.1:0, write the address to this file")
	withPprof := flag.Bool("pprof", false, "serve net/http/pprof under /debug/pprof/")
	listen := flag.String("listen", "127.0.0.1:0", "address for -http")
	silent := flag.Bool("silent", false, "also listen on 127.0.0.1:0 and never answer")
	flag.Parse()
	if *silent {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				keepConns = append(keepConns, c)
			}
		}()
	}
	if *addrFile != "" {
		l, err := net.Listen("tcp", *listen)
		if err != nil {
			panic(err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, "pong")
		})
		mux.HandleFunc("/stall", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, atomic.SwapInt64(&maxGap, 0)/1000)
		})
		if *withPprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		go http.Serve(l, mux)
		os.WriteFile(*addrFile, []byte(l.Addr().String()), 0o644)
	}
	if *notify {
		q := make(chan os.Signal, 1)
		signal.Notify(q, syscall.SIGQUIT)
		go func() {
			for range q {
				fmt.Fprintln(os.Stderr, "caught SIGQUIT")
			}
		}()
	}
	for i := 0; i < *mib; i++ {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(i + j)
		}
		keep = append(keep, b)
	}
	c := make(chan int)
	for i := 0; i < *n; i++ {
		go park(c)
	}
	go monitor()
	time.Sleep(100 * time.Millisecond)
	fmt.Println("ready")
	for {
		time.Sleep(time.Hour)
	}
}
