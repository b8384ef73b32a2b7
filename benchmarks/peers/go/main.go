// go-echo: the echo server a Go user writes, a peer for the uring-echo benchmarks.
//
//	go-echo [--host 127.0.0.1] [--port 6666]
//
// One goroutine per connection, a read/write loop on a 4 KiB buffer allocated once per
// connection; Go's netpoller (epoll) underneath and TCP_NODELAY by default. GOMAXPROCS, set by
// whoever starts it, decides how many threads run Go code (the runner: 1 for go, the server's
// CPUs for go-mt). Prints nothing unless something fails; SIGINT or SIGTERM exits 0.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

const bufferSize = 4096

// echo writes back every byte it reads until the client closes its side or the connection fails.
func echo(conn net.Conn) {
	defer conn.Close()
	buffer := make([]byte, bufferSize)
	for {
		n, err := conn.Read(buffer)
		if n > 0 {
			if _, werr := conn.Write(buffer[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func serve(listener net.Listener) {
	for {
		conn, err := listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, or a connection reset before it was accepted: go on.
			time.Sleep(time.Millisecond)
			continue
		}
		go echo(conn)
	}
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "go-echo: error: "+format+"\n", args...)
	os.Exit(code)
}

func main() {
	flags := flag.NewFlagSet("go-echo", flag.ContinueOnError)
	flags.SetOutput(io.Discard) // one line for a bad flag, below; the usage only for --help
	host := flags.String("host", "127.0.0.1", "address to listen on")
	port := flags.Int("port", 6666, "TCP port (0...65535)")
	if err := flags.Parse(os.Args[1:]); errors.Is(err, flag.ErrHelp) {
		fmt.Println("usage: go-echo [--host ADDRESS] [--port PORT]")
		fmt.Println("Go echo server, a goroutine per connection (default 127.0.0.1:6666); GOMAXPROCS sets its")
		fmt.Println("threads. Stops on SIGINT/SIGTERM.")
		os.Exit(0)
	} else if err != nil {
		fail(64, "%v (see 'go-echo --help')", err)
	}
	if flags.NArg() > 0 {
		fail(64, "unexpected argument '%s' (see 'go-echo --help')", flags.Arg(0))
	}
	if *port < 0 || *port > 65535 {
		fail(64, "invalid port: must be 0...65535")
	}
	// Go raises RLIMIT_NOFILE to the hard limit itself (since 1.19), sets SO_REUSEADDR on listeners
	// and TCP_NODELAY on connections.
	listener, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		fail(1, "cannot listen on %s:%d: %v", *host, *port, err)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go serve(listener)
	<-stop
	listener.Close()
	os.Exit(0)
}
