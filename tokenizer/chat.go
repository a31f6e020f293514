package tokenizer

import (
	"fmt"
	"strings"
	"sync"

	"github.com/ardanlabs/jinja"

	"github.com/ember-llm/ember/llama/bundle"
)

// Message is one chat turn. Role is "system", "user" or "assistant".
type Message struct{ Role, Content string }

// Built-in chat templates, used when a model carries none. Each is the text
// the model family publishes in its tokenizer_config.json, rendered by the
// same Jinja engine as a model's own template.
const (
	// TemplateLlama2 is Llama 2 chat ([INST] … [/INST], <<SYS>> system block).
	TemplateLlama2 = `{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}`

	// TemplateChatML is ChatML (<|im_start|>role … <|im_end|>), as used by Qwen and SmolLM.
	TemplateChatML = `{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`

	// TemplateZephyr is Zephyr's format (<|user|>, <|assistant|>, eos after each turn), as used by TinyLlama chat.
	TemplateZephyr = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"

	// TemplateLlama3 is Llama 3 Instruct's header/eot format.
	TemplateLlama3 = `{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}`
)

// BuiltinTemplate returns a built-in template by name: "llama2", "chatml",
// "zephyr" or "llama3".
func BuiltinTemplate(name string) (string, bool) {
	switch name {
	case "llama2":
		return TemplateLlama2, true
	case "chatml":
		return TemplateChatML, true
	case "zephyr":
		return TemplateZephyr, true
	case "llama3":
		return TemplateLlama3, true
	}
	return "", false
}

// ChatTemplate returns the template ApplyChatTemplate renders and its
// origin: "model" for the model's own, else the built-in's name chosen from
// the vocabulary's chat markers (Llama 3 headers, ChatML, Zephyr), falling
// back to Llama 2 for SentencePiece vocabularies and ChatML otherwise.
func (t *Tokenizer) ChatTemplate() (template, origin string) {
	if strings.TrimSpace(t.t.ChatTemplate) != "" {
		return t.t.ChatTemplate, "model"
	}
	name := t.builtin
	s, _ := BuiltinTemplate(name)
	return s, name
}

func (t *Tokenizer) builtinName() string {
	has := func(p string) bool {
		for i, q := range t.t.Pieces {
			if q == p && t.types[i] != bundle.TokenNormal {
				return true
			}
		}
		return false
	}
	switch {
	case has("<|start_header_id|>") && has("<|eot_id|>"):
		return "llama3"
	case has("<|im_start|>") && has("<|im_end|>"):
		return "chatml"
	case has("<|user|>") && has("<|assistant|>"):
		return "zephyr"
	case t.t.Kind == bundle.TokenizerSentencePiece:
		return "llama2"
	}
	return "chatml"
}

var templateCache sync.Map // template text → *jinja.Template

func compileTemplate(src string) (*jinja.Template, error) {
	if v, ok := templateCache.Load(src); ok {
		return v.(*jinja.Template), nil
	}
	tmpl, err := jinja.Compile(src)
	if err != nil {
		return nil, err
	}
	templateCache.Store(src, tmpl)
	return tmpl, nil
}

// ApplyChatTemplate renders msgs with the model's chat template (or a
// built-in one, see ChatTemplate). addGenerationPrompt appends the opening of
// the assistant's reply. The result contains special-token texts: encode it
// with ParseSpecial (EncodeChat does both).
func (t *Tokenizer) ApplyChatTemplate(msgs []Message, addGenerationPrompt bool) (string, error) {
	src, origin := t.ChatTemplate()
	return t.renderTemplate(src, origin, msgs, addGenerationPrompt)
}

// RenderChatTemplate renders msgs with the given Jinja template text.
func (t *Tokenizer) RenderChatTemplate(src string, msgs []Message, addGenerationPrompt bool) (string, error) {
	return t.renderTemplate(src, "given", msgs, addGenerationPrompt)
}

func (t *Tokenizer) renderTemplate(src, origin string, msgs []Message, addGenerationPrompt bool) (string, error) {
	if len(msgs) == 0 {
		return "", fmt.Errorf("tokenizer: chat template: no messages")
	}
	tmpl, err := compileTemplate(src)
	if err != nil {
		return "", fmt.Errorf("tokenizer: chat template (%s): %w", origin, err)
	}
	list := make([]any, len(msgs))
	for i, m := range msgs {
		list[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	out, err := tmpl.Render(map[string]any{
		"messages":              list,
		"add_generation_prompt": addGenerationPrompt,
		"bos_token":             t.Piece(t.bos),
		"eos_token":             t.Piece(t.eos),
	})
	if err != nil {
		return "", fmt.Errorf("tokenizer: chat template (%s): %w", origin, err)
	}
	return out, nil
}

// EncodeChat renders msgs and encodes the result with special tokens parsed,
// prepending BOS when the vocabulary adds one and the template did not.
func (t *Tokenizer) EncodeChat(msgs []Message, addGenerationPrompt bool) ([]int, error) {
	s, err := t.ApplyChatTemplate(msgs, addGenerationPrompt)
	if err != nil {
		return nil, err
	}
	ids := t.Encode(s, EncodeOptions{ParseSpecial: true})
	if t.t.AddBOS && t.bos >= 0 && (len(ids) == 0 || ids[0] != t.bos) {
		ids = append([]int{t.bos}, ids...)
	}
	return ids, nil
}
