# Ember: `make demo` runs the product, `make test` runs every test.
GO ?= go
SHARED_MODELS ?= $(abspath ../shared/models)
export EMBER_MODELS ?= $(SHARED_MODELS)
# Deno (npm devDependency) is the second WebGPU implementation the tests use.
export EMBER_DENO ?= $(abspath node_modules/.bin/deno)

.PHONY: test vet gotest fuzz demo deps

test: deps vet gotest

# What a fresh Debian machine lacks: Chromium (browser suites, SwiftShader WebGPU), sentencepiece
# (reference tokenizer), Deno from npm (second WebGPU implementation), Go modules.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
deps:
	@missing=""; command -v chromium >/dev/null || missing="$$missing chromium"; \
	 command -v spm_encode >/dev/null || missing="$$missing sentencepiece"; \
	 if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	   $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; fi
	@[ -x node_modules/.bin/deno ] || npm install --no-audit --no-fund >/dev/null
	@$(GO) mod download

vet:
	$(GO) vet ./...
	# scripts/ hold host tools (tagged !js); everything else must build for the browser.
	GOOS=js GOARCH=wasm $(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)

# Unit, fuzz seed corpora, browser (Chromium + SwiftShader WebGPU) and Deno suites.
gotest:
	$(GO) test -count=1 -timeout 30m ./...
	# js/wasm-only unit tests run under Node with Go's wasm exec wrapper.
	PATH="$$($(GO) env GOROOT)/lib/wasm:$$PATH" GOOS=js GOARCH=wasm $(GO) test -count=1 ./webgpu/engine/

# Each fuzz target for FUZZTIME (default 60s).
FUZZTIME ?= 60s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg || exit 1; \
	  done; done

demo:
	$(GO) run ./scripts/demo
