package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/crossborder/offencecam/internal/natsx"
)

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// applyEnv sets every scalar field from OFFENCECAM_<YAML PATH> when present: the path's
// segments upper-cased and joined by '_' (nats.url → OFFENCECAM_NATS_URL,
// review.lease_duration → OFFENCECAM_REVIEW_LEASE_DURATION). Deriving the names from the
// YAML tags keeps the file and the environment from drifting apart.
func applyEnv(cfg *Config, env map[string]string) error {
	return walkEnv(reflect.ValueOf(cfg).Elem(), nil, env)
}

func walkEnv(v reflect.Value, path []string, env map[string]string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "-" {
			continue
		}
		fv := v.Field(i)
		inline := strings.Contains(opts, "inline") || (f.Anonymous && tag == "")
		p := path
		if !inline {
			if tag == "" {
				tag = strings.ToLower(f.Name)
			}
			p = append(append([]string(nil), path...), tag)
		}
		if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeOf(time.Time{}) {
			if err := walkEnv(fv, p, env); err != nil {
				return err
			}
			continue
		}
		name := "OFFENCECAM_" + strings.ToUpper(strings.Join(p, "_"))
		raw, ok := env[name]
		if !ok {
			continue
		}
		if err := setScalar(fv, raw); err != nil {
			return fmt.Errorf("%s (from %s): %w", strings.Join(p, "."), name, err)
		}
	}
	return nil
}

func setScalar(v reflect.Value, raw string) error {
	if v.Type() == reflect.TypeOf(time.Duration(0)) {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(raw, 10, 64)
		if err != nil {
			return err
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return err
		}
		v.SetFloat(n)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("cannot be set from the environment; use the config file")
		}
		parts := strings.Split(raw, ",")
		s := reflect.MakeSlice(v.Type(), 0, len(parts))
		for _, p := range parts {
			if p = strings.TrimSpace(p); p != "" {
				s = reflect.Append(s, reflect.ValueOf(p))
			}
		}
		v.Set(s)
	default:
		return fmt.Errorf("cannot be set from the environment; use the config file")
	}
	return nil
}

// NATSLimits converts the nats section for natsx.Provision.
func (c Config) NATSLimits() natsx.Limits {
	l := natsx.DefaultLimits()
	n := c.NATS
	l.Replicas = n.Replicas
	l.FramesMaxMsgs = n.FramesMaxMsgs
	l.FramesMaxBytes = n.FramesMaxBytes
	l.FramesDedup = n.FramesDedup
	l.DetectionsAge = n.DetectionsAge
	l.DetectionsDedup = n.DetectionsDedup
	l.FinesDedup = n.FinesDedup
	l.AuditMaxAge = n.AuditMaxAge
	l.DLQMaxAge = n.DLQMaxAge
	l.SeenTTL = n.SeenTTL
	return l
}
