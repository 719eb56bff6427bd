package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// Extra keeps the JSON fields a message carried that this build does not know. A stage that
// reads a message written by a newer stage and passes it on must not strip what it does not
// understand (DESIGN.md: "unknown fields are kept").
type Extra map[string]json.RawMessage

var knownFields sync.Map // reflect.Type -> map[string]bool

func fieldsOf(t reflect.Type) map[string]bool {
	if v, ok := knownFields.Load(t); ok {
		return v.(map[string]bool)
	}
	m := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		m[name] = true
	}
	knownFields.Store(t, m)
	return m
}

// marshalKeepingExtra marshals alias (a struct value of a method-free alias type) and appends
// the extra fields that the struct does not itself define, in sorted order so the bytes are
// stable (Nats-Msg-Id dedup does not need it, but content hashes and tests do).
func marshalKeepingExtra(alias any, extra Extra) ([]byte, error) {
	b, err := json.Marshal(alias)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	known := fieldsOf(reflect.TypeOf(alias))
	keys := make([]string, 0, len(extra))
	for k := range extra {
		if !known[k] {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return b, nil
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	buf.Write(b[:len(b)-1]) // drop the closing brace
	for _, k := range keys {
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(extra[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// unmarshalKeepingExtra decodes data into alias (a pointer to a method-free alias type) and
// returns the fields the type does not know.
func unmarshalKeepingExtra(data []byte, alias any) (Extra, error) {
	if err := json.Unmarshal(data, alias); err != nil {
		return nil, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, err
	}
	known := fieldsOf(reflect.TypeOf(alias).Elem())
	var extra Extra
	for k, v := range all {
		if known[k] {
			continue
		}
		if extra == nil {
			extra = Extra{}
		}
		extra[k] = v
	}
	return extra, nil
}

// Decode reads one message of type T and checks its version: a message without "v" or with a
// version newer than this build understands is an error the caller can route to the DLQ
// instead of misreading it.
func Decode[T any, PT interface {
	*T
	Versioned
}](data []byte) (T, error) {
	var v T
	if err := json.Unmarshal(data, PT(&v)); err != nil {
		return v, fmt.Errorf("decode %T: %w", v, err)
	}
	switch ver := PT(&v).SchemaVersion(); {
	case ver == 0:
		return v, fmt.Errorf("decode %T: missing \"v\" field", v)
	case ver > Version:
		return v, fmt.Errorf("decode %T: version %d is newer than this build's %d", v, ver, Version)
	}
	return v, nil
}

// Versioned is what every message implements.
type Versioned interface{ SchemaVersion() int }
