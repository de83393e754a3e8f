package gpconnect

import (
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// objectMembers, members, splitArray and unmarshalString give the JSON
// reading of jwt_json.go the interface of the functions it replaced, so
// the differential fuzz targets of members_test.go, written for those,
// hold the new code to encoding/json unchanged.

// objectMembers is readObject judging its input, as a map.
func objectMembers(data []byte) (map[string]json.RawMessage, []string, error) {
	return membersMap(data, true)
}

// members is readObject on text taken as judged, as a map.
func members(data []byte) (map[string]json.RawMessage, []string, error) {
	return membersMap(data, false)
}

func membersMap(data []byte, check bool) (map[string]json.RawMessage, []string, error) {
	ms, err := readObject(string(data), check, nil)
	if err != nil {
		return nil, nil, err
	}
	m := make(map[string]json.RawMessage, len(ms))
	names := make([]string, 0, len(ms))
	for _, x := range ms {
		m[x.name] = json.RawMessage(data[x.start:x.end])
		names = append(names, x.name)
	}
	return m, names, nil
}

// splitArray walks an array with arrayItems, and leaves anything else to
// encoding/json, as the function it stands for did.
func splitArray(raw []byte, dst *[]json.RawMessage) error {
	s := string(raw)
	i := skipSpace(s, 0)
	if i >= len(s) || s[i] != '[' {
		return json.Unmarshal(raw, dst)
	}
	items := []json.RawMessage{}
	a := newArrayItems(s[i:])
	for {
		start := i + a.i
		it, more := a.next()
		if !more {
			break
		}
		items = append(items, json.RawMessage(raw[start:start+len(it)]))
	}
	*dst = items
	return nil
}

// unmarshalString decodes a valid JSON string with stringValue, and leaves
// anything else to encoding/json.
func unmarshalString(raw []byte, dst *string) error {
	s := string(raw)
	if t := s[skipSpace(s, 0):]; utf8.ValidString(s) && validJSON(s) && t[0] == '"' {
		v, ok := stringValue(t[:scanString(t, 0)])
		if !ok {
			return errors.New("unquote refused a valid JSON string")
		}
		*dst = v
		return nil
	}
	return json.Unmarshal(raw, dst)
}
