// dashboard-check says whether a Grafana dashboard works on what Stasis exports:
//   - it reads as Grafana's own schema types describe a dashboard (the Grafana Foundation SDK's strict
//     decoding): a field Grafana does not know, a value of the wrong type or a required field missing,
//     in the dashboard, a panel, its options or a Prometheus query, fails it;
//   - every query of its panels and variables is PromQL that Prometheus' own parser accepts, once
//     Grafana's variables are put in, and names only metrics found in the given scrapes of /metrics.
//
// ObservabilityIT runs it on the dashboard the chart ships, with what a real run of Stasis exported:
//
//	dashboard-check --metrics operator.prom --metrics agent.prom DASHBOARD.json...
//
// Exit 0: every dashboard passed; 1: one did not (what is wrong goes to stderr); 2: bad usage.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/prometheus/promql/parser"
)

func main() {
	var scrapes []string
	flag.Func("metrics", "a scrape of /metrics (Prometheus text format); repeat for each process", func(f string) error {
		scrapes = append(scrapes, f)
		return nil
	})
	flag.Parse()
	if flag.NArg() == 0 || len(scrapes) == 0 {
		fmt.Fprintln(os.Stderr, "usage: dashboard-check --metrics SCRAPE [--metrics SCRAPE...] DASHBOARD.json...")
		os.Exit(2)
	}
	exported := map[string]bool{}
	for _, f := range scrapes {
		if err := readSampleNames(f, exported); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	// Panel options and queries are checked by their types (timeseries, prometheus...).
	plugins.RegisterDefaultPlugins()
	failed := false
	for _, file := range flag.Args() {
		raw, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		var board dashboard.Dashboard
		if err := strict(board.UnmarshalJSONStrict(raw)); err != nil {
			fmt.Fprintf(os.Stderr, "%s is not a dashboard Grafana reads as written:\n%v\n", file, err)
			failed = true
			continue
		}
		queries, err := queriesOf(raw)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
			failed = true
			continue
		}
		names := map[string]bool{}
		for _, q := range queries {
			used, err := metricNames(q.expr)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %s: %q is not PromQL: %v\n", file, q.where, q.expr, err)
				failed = true
				continue
			}
			for _, name := range used {
				names[name] = true
				if !exported[name] {
					fmt.Fprintf(os.Stderr, "%s: %s: %s is not a metric Stasis exported\n", file, q.where, name)
					failed = true
				}
			}
		}
		fmt.Printf("%s: dashboard %q, schema version %d, %d panels, %d queries naming %s\n", file, *board.Title,
			board.SchemaVersion, len(board.Panels), len(queries), strings.Join(sorted(names), " "))
	}
	if failed {
		os.Exit(1)
	}
}

// strict is the decoder's verdict: it returns its list of problems even when the list is empty.
func strict(err error) error {
	var problems cog.BuildErrors
	if errors.As(err, &problems) && len(problems) == 0 {
		return nil
	}
	return err
}

// sampleName is what a sample line of the text format starts with.
var sampleName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*`)

// readSampleNames adds the names of the samples in a scrape (with _bucket, _sum, _count: what a query names).
func readSampleNames(file string, into map[string]bool) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	found := 0
	for lines.Scan() {
		if name := sampleName.FindString(lines.Text()); name != "" {
			into[name] = true
			found++
		}
	}
	if err := lines.Err(); err != nil {
		return err
	}
	if found == 0 {
		return fmt.Errorf("%s holds no samples: not a scrape of /metrics", file)
	}
	return nil
}

type query struct {
	where string // "panel \"Title\"" or "variable node"
	expr  string
}

// queriesOf lists the PromQL of every panel (rows' collapsed panels too) and every query variable.
func queriesOf(raw []byte) ([]query, error) {
	var board struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Type  string          `json:"type"`
				Name  string          `json:"name"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &board); err != nil {
		return nil, err
	}
	var queries []query
	var walk func([]panel)
	walk = func(panels []panel) {
		for _, p := range panels {
			for _, t := range p.Targets {
				queries = append(queries, query{fmt.Sprintf("panel %q, query %s", p.Title, t.RefID), t.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(board.Panels)
	for _, v := range board.Templating.List {
		if v.Type != "query" {
			continue
		}
		var text string
		var object struct {
			Query string `json:"query"`
		}
		if json.Unmarshal(v.Query, &text) != nil {
			if err := json.Unmarshal(v.Query, &object); err != nil {
				return nil, fmt.Errorf("variable %s: query is neither text nor an object with one", v.Name)
			}
			text = object.Query
		}
		expr, err := variableExpr(text)
		if err != nil {
			return nil, fmt.Errorf("variable %s: %v", v.Name, err)
		}
		queries = append(queries, query{"variable " + v.Name, expr})
	}
	return queries, nil
}

type panel struct {
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// Grafana's Prometheus variable queries: label_values(selector, label) and query_result(expr).
var (
	labelValues = regexp.MustCompile(`^\s*label_values\(\s*(.+)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)
	queryResult = regexp.MustCompile(`^\s*query_result\((.+)\)\s*$`)
)

func variableExpr(text string) (string, error) {
	for _, form := range []*regexp.Regexp{labelValues, queryResult} {
		if m := form.FindStringSubmatch(text); m != nil {
			return m[1], nil
		}
	}
	return "", fmt.Errorf("%q names no metric (use label_values(metric, label) or query_result(expr))", text)
}

// Grafana's variables, as Grafana puts them in before Prometheus sees a query: its own ($__rate_interval,
// $__interval, $__range) are durations; a dashboard's ($node, ${node}) are regular expressions there.
var (
	grafanaDuration = regexp.MustCompile(`\$\{?__(rate_interval|interval|range)\}?`)
	dashboardVar    = regexp.MustCompile(`\$\{?[a-zA-Z_][a-zA-Z0-9_]*(:[a-z]+)?\}?`)
)

// metricNames parses a query as Prometheus does and returns the metric each selector names.
func metricNames(expr string) ([]string, error) {
	expr = dashboardVar.ReplaceAllString(grafanaDuration.ReplaceAllString(expr, "1m"), ".*")
	parsed, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(parsed, func(node parser.Node, _ []parser.Node) error {
		if selector, ok := node.(*parser.VectorSelector); ok {
			name := selector.Name
			for _, m := range selector.LabelMatchers {
				if name == "" && m.Name == "__name__" && m.Type.String() == "=" {
					name = m.Value
				}
			}
			if name == "" {
				err = fmt.Errorf("selector %s names no metric", selector)
			}
			names = append(names, name)
		}
		return nil
	})
	return names, err
}

func sorted(set map[string]bool) []string {
	var list []string
	for s := range set {
		list = append(list, s)
	}
	sort.Strings(list)
	return list
}
