// Package tokenizer turns text into token ids and back, exactly as the
// reference libraries do for Llama-family models: SentencePiece BPE (Llama 1/2,
// TinyLlama, Mistral, the TinyStories vocabularies) and byte-level BPE (GPT-2,
// Llama 3, SmolLM). It also loads vocabularies from the files models ship
// (tokenizer.model, llama2.c tokenizer.bin, HuggingFace tokenizer.json, GGUF
// metadata), decodes token streams into complete UTF-8 text, and renders chat
// templates.
//
// It is pure Go and must stay so (the wasm build and the CPU engine both use
// it); it never reads model weights.
package tokenizer
