module github.com/ember-llm/ember

go 1.26
