package main

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// writeChart draws two horizontal bar charts side by side, req/s and p99 latency per
// throughput target (medians over rounds), and saves them as a PNG.
func (r *report) writeChart(path string) error {
	var names []string
	var rpsV, p99V plotter.Values
	// Bottom to top in the chart: reverse table order so the table's first row is on top.
	for i := len(r.targets) - 1; i >= 0; i-- {
		t := r.targets[i]
		if !t.throughput {
			continue
		}
		names = append(names, t.key)
		rpsV = append(rpsV, medianOf(r.rounds, t.key, rps))
		p99V = append(p99V, medianOf(r.rounds, t.key, p99))
	}
	mk := func(title, xlabel string, v plotter.Values, c color.Color, format func(float64) string) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = xlabel
		p.X.Min = 0
		bars, err := plotter.NewBarChart(v, vg.Points(18))
		if err != nil {
			return nil, err
		}
		bars.Horizontal = true
		bars.Color = c
		bars.LineStyle.Width = 0
		// The value at the end of each bar.
		maxV := 0.0
		xys := make(plotter.XYs, len(v))
		labels := make([]string, len(v))
		for i, x := range v {
			maxV = max(maxV, x)
			xys[i] = plotter.XY{X: x, Y: float64(i)}
			labels[i] = format(x)
		}
		lab, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
		if err != nil {
			return nil, err
		}
		for i := range lab.TextStyle {
			lab.TextStyle[i].YAlign = -0.5
			lab.TextStyle[i].XAlign = 0
		}
		lab.Offset = vg.Point{X: vg.Points(3)}
		p.X.Max = maxV * 1.18 // room for the labels
		p.Add(plotter.NewGrid(), bars, lab)
		p.NominalY(names...)
		return p, nil
	}
	left, err := mk("Requests/s (higher is better)", "req/s, median of rounds", rpsV, color.RGBA{R: 0x33, G: 0x66, B: 0xcc, A: 0xff},
		func(x float64) string { return fmt.Sprintf("%.0f", x) })
	if err != nil {
		return err
	}
	right, err := mk("p99 latency (lower is better)", "ms, median of rounds", p99V, color.RGBA{R: 0xcc, G: 0x66, B: 0x33, A: 0xff},
		func(x float64) string { return fmt.Sprintf("%.1f ms", x) })
	if err != nil {
		return err
	}
	img := vgimg.New(11*vg.Inch, 4*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align([][]*plot.Plot{{left, right}}, tiles, dc)
	left.Draw(canvases[0][0])
	right.Draw(canvases[0][1])
	f, err := createFile(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
