module example.com/wasmwiz-example

go 1.19
