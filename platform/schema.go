package platform

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

var printer = message.NewPrinter(language.English)

// SchemaJSON is the published JSON Schema (draft 2020-12) of Record,
// platform/schema/fine-record.schema.json.
//
//go:embed schema/fine-record.schema.json
var SchemaJSON []byte

const schemaURL = "https://github.com/crossborder/offencecam/platform/schema/fine-record.schema.json"

// Schema validates record bodies before they are sent.
type Schema struct{ s *jsonschema.Schema }

// CompileSchema compiles the embedded schema, asserting formats (date-time, date) so a
// malformed timestamp is a schema failure rather than the platform's problem.
func CompileSchema() (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(SchemaJSON))
	if err != nil {
		return nil, fmt.Errorf("platform: fine-record schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("platform: fine-record schema: %w", err)
	}
	s, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("platform: fine-record schema: %w", err)
	}
	return &Schema{s: s}, nil
}

// ErrSchema marks a record body the schema refuses.
var ErrSchema = errors.New("fine record fails schema")

// Validate checks a JSON body. The error lists every failing location on one line, short
// enough for a supervisor's screen and the audit trail.
func (s *Schema) Validate(body []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: not JSON: %v", ErrSchema, err)
	}
	err = s.s.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("%w: %v", ErrSchema, err)
	}
	var leaves []string
	collectLeaves(ve, &leaves)
	msg := strings.Join(leaves, "; ")
	if len(msg) > 900 {
		msg = msg[:900] + "…"
	}
	return fmt.Errorf("%w: %s", ErrSchema, msg)
}

func collectLeaves(e *jsonschema.ValidationError, out *[]string) {
	if len(e.Causes) == 0 {
		loc := "/" + strings.Join(e.InstanceLocation, "/")
		*out = append(*out, fmt.Sprintf("%s: %s", loc, e.ErrorKind.LocalizedString(printer)))
		return
	}
	for _, c := range e.Causes {
		collectLeaves(c, out)
	}
}
