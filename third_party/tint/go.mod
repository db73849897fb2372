module github.com/lmittmann/tint

go 1.21
