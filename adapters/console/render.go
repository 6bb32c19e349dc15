package console

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"strings"
	"time"

	"github.com/tiyn/tiyn/domain"
)

//go:embed templates/*.html
var templateFiles embed.FS

// layoutFile holds the page skeleton ("layout") and shared blocks; every
// other file is one page defining "content".
const layoutFile = "layout.html"

// pageNames lists the page templates (the file names without .html).
func pageNames() ([]string, error) {
	entries, err := fs.ReadDir(templateFiles, "templates")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if n := e.Name(); n != layoutFile && strings.HasSuffix(n, ".html") {
			out = append(out, strings.TrimSuffix(n, ".html"))
		}
	}
	return out, nil
}

// funcs are the template functions of one language. Parsing needs their
// names only; each language's clone gets its own.
func funcs(l localizer) template.FuncMap {
	return template.FuncMap{
		"t":     l.T,
		"enum":  l.Enum,
		"money": l.Money,
		"count": func(n any) string {
			switch v := n.(type) {
			case int:
				return l.Count(int64(v))
			case int64:
				return l.Count(v)
			}
			return fmt.Sprint(n)
		},
		"time": l.Time,
		"date": l.Date,
		"age":  l.Age,
		"isoDate": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.In(l.zone).Format(time.DateOnly)
		},
		"positive": func(a domain.Amount) bool { return a.IsPositive() },
	}
}

// parsePages parses every page with the layout, once per language.
func parsePages(catalogs map[Lang]catalog, zone *time.Location) (map[Lang]map[string]*template.Template, error) {
	names, err := pageNames()
	if err != nil {
		return nil, err
	}
	base := localizer{lang: LangEN, msgs: catalogs[LangEN], zone: zone}
	out := map[Lang]map[string]*template.Template{}
	for _, name := range names {
		t, err := template.New(name).Funcs(funcs(base)).ParseFS(templateFiles, "templates/"+layoutFile, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		for _, lang := range Langs() {
			clone, err := t.Clone()
			if err != nil {
				return nil, err
			}
			clone.Funcs(funcs(localizer{lang: lang, msgs: catalogs[lang], zone: zone}))
			if out[lang] == nil {
				out[lang] = map[string]*template.Template{}
			}
			out[lang][name] = clone
		}
	}
	return out, nil
}
