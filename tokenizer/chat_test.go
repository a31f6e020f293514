package tokenizer

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Chat templates as the models publish them in tokenizer_config.json.
const (
	mistralV03Template = `{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message["role"] == "user" %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
`

	mistralV01Template = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"

	qwen25Template = `{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
`

	llama31Template = `{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {{- message.content }}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
`
)

var (
	sysUser        = []Message{{"system", "You are helpful."}, {"user", "Hi"}}
	multiTurn      = []Message{{"system", "You are helpful."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "How are you?"}}
	userOnly       = []Message{{"user", "Hi"}}
	notAlternating = []Message{{"user", "Hi"}, {"user", "Again"}}
)

func tinyByteLevel(t *testing.T) *Tokenizer {
	t.Helper()
	tj, cfg, gen := tinyHFByteLevel()
	bt, err := ParseHFJSON(tj, cfg, gen, "tokenizer.json")
	require.NoError(t, err)
	bt.ChatTemplate = ""
	tok, err := New(bt)
	require.NoError(t, err)
	return tok
}

func TestChatTemplates(t *testing.T) {
	sp := tinySP(t)
	bl := tinyByteLevel(t)
	for _, tc := range []struct {
		name     string
		tok      *Tokenizer
		template string
		msgs     []Message
		gen      bool
		want     string
	}{
		{"llama2 multi-turn", sp, TemplateLlama2, multiTurn, true,
			"<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] How are you? [/INST]"},
		{"llama2 no system", sp, TemplateLlama2, []Message{{"user", "  Hi  "}}, true, "<s>[INST] Hi [/INST]"},
		{"mistral v0.3", sp, mistralV03Template, multiTurn, false,
			"<s>[INST] Hi[/INST] Hello!</s>[INST] You are helpful.\n\nHow are you?[/INST]"},
		{"mistral v0.1", sp, mistralV01Template, multiTurn[1:], false,
			"<s>[INST] Hi [/INST]Hello!</s> [INST] How are you? [/INST]"},
		{"zephyr", sp, TemplateZephyr, sysUser, true,
			"<|system|>\nYou are helpful.</s>\n<|user|>\nHi</s>\n<|assistant|>\n"},
		{"zephyr no prompt", sp, TemplateZephyr, multiTurn[1:3], false,
			"<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n"},
		{"chatml", bl, TemplateChatML, sysUser, true,
			"<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"},
		{"qwen2.5 default system", bl, qwen25Template, userOnly, true,
			"<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"},
		{"qwen2.5 multi-turn", bl, qwen25Template, multiTurn, false,
			"<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n"},
		{"llama3", bl, TemplateLlama3, sysUser, true,
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"llama3.1", bl, llama31Template, multiTurn, true,
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are helpful.<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
	} {
		got, err := tc.tok.RenderChatTemplate(tc.template, tc.msgs, tc.gen)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}

	for _, tmpl := range []string{TemplateLlama2, mistralV03Template, mistralV01Template} {
		_, err := sp.RenderChatTemplate(tmpl, notAlternating, true)
		require.ErrorContains(t, err, "alternate")
	}
	_, err := sp.RenderChatTemplate("{% for %}", userOnly, true)
	require.ErrorContains(t, err, "chat template")
	_, err = sp.ApplyChatTemplate(nil, true)
	require.Error(t, err)
}

func TestApplyChatTemplateChoosesTemplate(t *testing.T) {
	sp := tinySP(t)
	_, origin := sp.ChatTemplate()
	require.Equal(t, "llama2", origin)
	got, err := sp.ApplyChatTemplate(sysUser, true)
	require.NoError(t, err)
	require.Equal(t, "<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST]", got)
	ids, err := sp.EncodeChat(sysUser, true)
	require.NoError(t, err)
	require.Equal(t, 1, ids[0])
	require.NotEqual(t, 1, ids[1], "BOS is not doubled")

	bl := tinyByteLevel(t)
	_, origin = bl.ChatTemplate()
	require.Equal(t, "llama3", origin)
	ids, err = bl.EncodeChat(userOnly, true)
	require.NoError(t, err)
	require.Equal(t, 258, ids[0])
	require.Contains(t, ids, 260) // <|eot_id|> parsed as a special token

	// A model's own template wins.
	bt := *bl.Info()
	bt.ChatTemplate = "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}{% if add_generation_prompt %}A:{% endif %}"
	own, err := New(&bt)
	require.NoError(t, err)
	_, origin = own.ChatTemplate()
	require.Equal(t, "model", origin)
	got, err = own.ApplyChatTemplate(sysUser, true)
	require.NoError(t, err)
	require.Equal(t, "<|begin_of_text|>system:You are helpful.;user:Hi;A:", got)
}
