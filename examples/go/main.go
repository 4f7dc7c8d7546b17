// Runs a WebAssembly module on WasmWiz with Go's standard library alone.
//
//	export WASMWIZ_URL=http://127.0.0.1:8080 WASMWIZ_API_KEY=ww_...
//	echo "Ada" | go run examples/go/main.go src/wasmwiz/examples/echo.wat
//
// With -name echo it stores the module under that name first and runs it by reference.
// -file PATH (repeatable) puts a local file in the run's directory under its base name;
// -collect PATTERN brings back the files the run leaves that match it, printed after its
// output.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// result is the 200 response: how the run ended, what it printed and the files it left.
type result struct {
	Status   string          `json:"status"`
	Output   string          `json:"output"`
	Stderr   string          `json:"stderr"`
	ExitCode *int            `json:"exit_code"`
	Error    string          `json:"error"`
	Files    []collectedFile `json:"files"`
}

// collectedFile is a file the run left that collect matched. Content is base64, or nil
// when it was past the service's cap on collected files.
type collectedFile struct {
	Path    string  `json:"path"`
	Size    int64   `json:"size"`
	SHA256  string  `json:"sha256"`
	Content *string `json:"content"`
}

// fileList collects the paths of a repeated -file flag.
type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

// storedModule is a module the server keeps, to run by its ID or one of its Names.
type storedModule struct {
	ID    string   `json:"id"`
	Names []string `json:"names"`
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
	name := flag.String("name", "", "store the module under this name, then run it by name")
	var files fileList
	flag.Var(&files, "file", "a file to send (repeatable)")
	collect := flag.String("collect", "", "a glob of the files to bring back, e.g. 'out/*'")
	flag.Parse()
	if key == "" || flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: WASMWIZ_API_KEY=ww_... main [-name NAME] "+
			"[-file PATH]... [-collect PATTERN] MODULE < input")
		os.Exit(2)
	}
	path := flag.Arg(0)
	module, err := os.ReadFile(path)
	check(err)
	stdin, err := io.ReadAll(os.Stdin)
	check(err)

	var body bytes.Buffer
	form := multipart.NewWriter(&body)
	if *name == "" {
		part, err := form.CreateFormFile("wasm", filepath.Base(path))
		check(err)
		part.Write(module)
	} else {
		// Store the module once: 201, or 200 if these bytes were stored already.
		var upload bytes.Buffer
		uploadForm := multipart.NewWriter(&upload)
		part, err := uploadForm.CreateFormFile("wasm", filepath.Base(path))
		check(err)
		part.Write(module)
		uploadForm.WriteField("name", *name)
		check(uploadForm.Close())
		var stored storedModule
		post(url, key, "/api/v1/modules", uploadForm, &upload, &stored)
		fmt.Fprintf(os.Stderr, "stored %s as %s\n", stored.ID, *name)
		// Then run it by reference: "module" (a name or its ID) instead of "wasm".
		form.WriteField("module", *name)
	}
	part, err := form.CreateFormFile("input", "input")
	check(err)
	part.Write(stdin)
	form.WriteField("args", `[]`) // a JSON array of strings
	// One "files" part per file, its filename the file's path in the run's directory.
	for _, file := range files {
		content, err := os.ReadFile(file)
		check(err)
		part, err := form.CreateFormFile("files", filepath.Base(file))
		check(err)
		part.Write(content)
	}
	if *collect != "" {
		patterns, err := json.Marshal([]string{*collect}) // a JSON array of globs
		check(err)
		form.WriteField("collect", string(patterns))
	}
	check(form.Close())

	var run result
	post(url, key, "/api/v1/execute", form, &body, &run)
	exitCode := "null"
	if run.ExitCode != nil {
		exitCode = fmt.Sprint(*run.ExitCode)
	}
	// A trap or a timeout is a 200 too: Status says how the run ended.
	fmt.Printf("status: %s, exit code: %s\n", run.Status, exitCode)
	fmt.Print(run.Output)
	fmt.Fprint(os.Stderr, run.Stderr)
	// A program that writes these to disk must keep every path inside its directory
	// (no absolute path, no ".."): filepath.IsLocal (Go 1.20) checks one.
	for _, file := range run.Files {
		if file.Content == nil { // past the service's cap on collected files
			fmt.Printf("file: %s (%d bytes, not sent: over the cap)\n", file.Path, file.Size)
			continue
		}
		content, err := base64.StdEncoding.DecodeString(*file.Content)
		check(err)
		fmt.Printf("file: %s (%d bytes)\n", file.Path, file.Size)
		os.Stdout.Write(content)
	}
}

// post sends the form to url+path and decodes a 2xx answer into answer; it ends the
// program on a refusal (exit 1) or when the server cannot be reached (exit 2).
func post(url, key, path string, form *multipart.Writer, body io.Reader, answer any) {
	request, err := http.NewRequest("POST", url+path, body)
	check(err)
	request.Header.Set("Authorization", "Bearer "+key)
	request.Header.Set("Content-Type", form.FormDataContentType())
	response, err := (&http.Client{Timeout: 60 * time.Second}).Do(request)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Could not reach %s: %v\n", url, err)
		os.Exit(2)
	}
	defer response.Body.Close()

	if response.StatusCode/100 != 2 {
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
	check(json.NewDecoder(response.Body).Decode(answer))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
