package gateway

import "testing"

func TestIsEventStream(t *testing.T) {
	tests := []struct {
		name, contentType string
		want              bool
	}{
		{name: "plain", contentType: "text/event-stream", want: true},
		{name: "charset", contentType: "text/event-stream; charset=utf-8", want: true},
		{name: "any case", contentType: "Text/Event-Stream;charset=UTF-8", want: true},
		{name: "leading space", contentType: " text/event-stream", want: true},
		{name: "space before parameters", contentType: "text/event-stream ; charset=utf-8", want: true},
		{name: "json", contentType: "application/json"},
		{name: "empty"},
		{name: "longer type", contentType: "text/event-streams"},
		{name: "prefix only", contentType: "text/event"},
		{name: "malformed parameters", contentType: "text/event-stream; =x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isEventStream(tt.contentType); got != tt.want {
				t.Errorf("isEventStream(%q): got %v, want %v", tt.contentType, got, tt.want)
			}
		})
	}
}

func BenchmarkIsEventStream(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if isEventStream("application/json") {
			b.Fatal("application/json is not an event stream")
		}
	}
}
