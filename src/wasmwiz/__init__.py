"""WasmWiz: run untrusted WebAssembly (WASI) modules over an authenticated HTTP API."""

__version__ = "0.1.0"
