# Ember: `make demo` runs the product, `make test` runs every test.
GO ?= go
SHARED_MODELS ?= $(abspath ../shared/models)
export EMBER_MODELS ?= $(SHARED_MODELS)

.PHONY: test vet gotest fuzz-seeds demo

test: vet gotest

vet:
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)

gotest:
	$(GO) test -count=1 ./...

demo:
	@echo "make demo: not built yet"; exit 1
