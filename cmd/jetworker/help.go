package main

import (
	"fmt"
	"io"
	"strings"
)

// printHelp prints the command's usage: the synopsis, the about text, and
// its flags grouped as declared, each with its environment variable and
// default. Secrets never show a value: "(set)" says the environment has
// one. Advanced flags are listed by --help-all only.
func (c *cli) printHelp(w io.Writer, all bool) {
	fmt.Fprintf(w, "Usage: jetworker %s [flags]%s\n", c.name, c.synopsis)
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.about))
	}
	var shown []*setting
	var hidden []string
	for _, s := range c.settings {
		if s.advanced && !all {
			hidden = append(hidden, "--"+s.flag)
			continue
		}
		shown = append(shown, s)
	}
	flagW, envW := 0, 0
	for _, s := range shown {
		flagW = max(flagW, len(s.flagColumn()))
		envW = max(envW, len(s.env))
	}
	for _, g := range c.groups {
		printed := false
		for _, s := range shown {
			if s.group != g {
				continue
			}
			if !printed {
				fmt.Fprintf(w, "\n%s:\n", g)
				printed = true
			}
			line := fmt.Sprintf("  %-*s  ", flagW, s.flagColumn())
			if s.env != "" {
				line += fmt.Sprintf("%-*s  ", envW, s.env)
			}
			line += s.desc + s.defaultNote()
			fmt.Fprintln(w, strings.TrimRight(line, " "))
		}
	}
	fmt.Fprintln(w)
	if len(hidden) > 0 {
		fmt.Fprintf(w, "More flags (%s): jetworker %s --help-all\n", strings.Join(hidden, ", "), c.name)
	}
	if len(c.envs) > 0 {
		fmt.Fprintln(w, "A flag given on the command line wins over its environment variable.")
	}
}

// flagColumn is "--name META".
func (s *setting) flagColumn() string {
	if kindName(s.field.Type()) == "bool" {
		return "--" + s.flag
	}
	meta := s.meta
	if meta == "" && !s.repeat {
		meta = map[string]string{"duration": "DURATION", "int": "N", "float": "X", "list": "LIST"}[kindName(s.field.Type())]
	}
	if meta == "" {
		meta = "VALUE"
	}
	return "--" + s.flag + " " + meta
}

// defaultNote is " (default X)" and " (set)" when the environment sets
// the variable; never a secret's value.
func (s *setting) defaultNote() string {
	var notes []string
	if s.def != "" && s.secrecy != secretAll {
		d := s.def
		if s.secrecy == secretURLs {
			d = redactURL(d)
		}
		notes = append(notes, "default "+d)
	}
	if s.envSet() {
		notes = append(notes, "set")
	}
	if len(notes) == 0 {
		return ""
	}
	return " (" + strings.Join(notes, "; ") + ")"
}
