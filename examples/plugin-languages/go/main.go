// A GitHub push event as a chat message: {"text": "<pusher> pushed <n> commits to <repo>"}
// ("1 commit" for one). An event without those fields is a fatal failure.
package main

import (
	"fmt"

	"switchyard.dev/plugin"
)

type push struct {
	Pusher *struct {
		Name *string `json:"name"`
	} `json:"pusher"`
	Repository *struct {
		FullName *string `json:"full_name"`
	} `json:"repository"`
	Commits *[]any `json:"commits"`
}

func init() { plugin.Handle(handle) }

func handle(ev *plugin.Event) (plugin.Verdict, error) {
	var body push
	if err := ev.BodyJSON(&body); err != nil {
		return plugin.Verdict{}, plugin.Fatal("body is not JSON")
	}
	switch {
	case body.Pusher == nil || body.Pusher.Name == nil:
		return plugin.Verdict{}, plugin.Fatal("not a push event: no `pusher.name`")
	case body.Repository == nil || body.Repository.FullName == nil:
		return plugin.Verdict{}, plugin.Fatal("not a push event: no `repository.full_name`")
	case body.Commits == nil:
		return plugin.Verdict{}, plugin.Fatal("not a push event: no `commits`")
	}
	commits := len(*body.Commits)
	noun := "commits"
	if commits == 1 {
		noun = "commit"
	}
	text := fmt.Sprintf("%s pushed %d %s to %s", *body.Pusher.Name, commits, noun, *body.Repository.FullName)
	return plugin.ModifyBodyJSON(ev, map[string]string{"text": text})
}

func main() {}
