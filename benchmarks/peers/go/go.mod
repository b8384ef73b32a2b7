module uring-echo/benchmarks/peers/go

go 1.19
