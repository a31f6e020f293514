// Package serviceworker holds sw.js, Ember's service worker: a versioned
// precache of the app shell and an IndexedDB shard store that only ever
// holds verified bytes (schema: docs/FORMAT.md, "Shard store"). The Go side
// only embeds the script so that scripts/serve can serve it when the app
// directory lacks one; the script itself is plain JavaScript.
package serviceworker

import _ "embed"

// Script is the content of sw.js. scripts/serve replaces VersionPlaceholder
// and ShellPlaceholder when it serves it.
//
//go:embed sw.js
var Script []byte

// Placeholders in sw.js that scripts/serve fills in: the app version (a hash
// of the app shell's files) and the JSON list of shell files to precache.
const (
	VersionPlaceholder = "__EMBER_APP_VERSION__"
	ShellPlaceholder   = `["__EMBER_SHELL__"]`
)
