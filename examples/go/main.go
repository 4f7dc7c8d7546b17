// Runs a WebAssembly module on WasmWiz with Go's standard library alone.
//
//	export WASMWIZ_URL=http://127.0.0.1:8080 WASMWIZ_API_KEY=ww_...
//	echo "Ada" | go run examples/go/main.go src/wasmwiz/examples/echo.wat
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// result is the 200 response: how the run ended and what it printed.
type result struct {
	Status   string `json:"status"`
	Output   string `json:"output"`
	Stderr   string `json:"stderr"`
	ExitCode *int   `json:"exit_code"`
	Error    string `json:"error"`
}

// problem is an RFC 9457 refusal; Code is stable, Detail is for people.
type problem struct {
	Code      string `json:"code"`
	Detail    string `json:"detail"`
	RequestID string `json:"request_id"`
}

func main() {
	url := os.Getenv("WASMWIZ_URL")
	if url == "" {
		url = "http://127.0.0.1:8080"
	}
	key := os.Getenv("WASMWIZ_API_KEY")
	if key == "" || len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: WASMWIZ_API_KEY=ww_... main MODULE < input")
		os.Exit(2)
	}
	module, err := os.ReadFile(os.Args[1])
	check(err)
	stdin, err := io.ReadAll(os.Stdin)
	check(err)

	var body bytes.Buffer
	form := multipart.NewWriter(&body)
	part, err := form.CreateFormFile("wasm", filepath.Base(os.Args[1]))
	check(err)
	part.Write(module)
	part, err = form.CreateFormFile("input", "input")
	check(err)
	part.Write(stdin)
	form.WriteField("args", `[]`) // a JSON array of strings
	check(form.Close())

	request, err := http.NewRequest("POST", url+"/api/v1/execute", &body)
	check(err)
	request.Header.Set("Authorization", "Bearer "+key)
	request.Header.Set("Content-Type", form.FormDataContentType())
	response, err := (&http.Client{Timeout: 60 * time.Second}).Do(request)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Could not reach %s: %v\n", url, err)
		os.Exit(2)
	}
	defer response.Body.Close()

	if response.StatusCode != http.StatusOK {
		var refusal problem
		check(json.NewDecoder(response.Body).Decode(&refusal))
		retry := ""
		if after := response.Header.Get("Retry-After"); after != "" {
			retry = "; retry after " + after + " s"
		}
		fmt.Fprintf(os.Stderr, "WasmWiz refused the request: %s (HTTP %d): %s%s\n",
			refusal.Code, response.StatusCode, refusal.Detail, retry)
		os.Exit(1)
	}

	var run result
	check(json.NewDecoder(response.Body).Decode(&run))
	exitCode := "null"
	if run.ExitCode != nil {
		exitCode = fmt.Sprint(*run.ExitCode)
	}
	// A trap or a timeout is a 200 too: Status says how the run ended.
	fmt.Printf("status: %s, exit code: %s\n", run.Status, exitCode)
	fmt.Print(run.Output)
	fmt.Fprint(os.Stderr, run.Stderr)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
