// Draws the results charts from the JSON the page embeds (json_script), with the
// plotly.js file served from this server's static files.
(function () {
  "use strict";
  var config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["sendDataToCloud"] };
  var font = { family: "system-ui, sans-serif", color: "#1a1a1a" };
  function data(id) { var el = document.getElementById(id); return el ? JSON.parse(el.textContent) : null; }
  function pct(x) { return (x * 100).toFixed(2) + "%"; }

  var forest = data("forest-data");
  var target = document.getElementById("forest");
  if (forest && target) {
    if (!forest.length) { target.textContent = "No comparison has numbers yet."; }
    else {
      // Always show 0 (no change): a bar that crosses it is not significant.
      var lo = Math.min(0, Math.min.apply(null, forest.map(function (p) { return p.low; })));
      var hi = Math.max(0, Math.max.apply(null, forest.map(function (p) { return p.high; })));
      var pad = (hi - lo) * 0.08 || 0.01;
      Plotly.newPlot(target, [{
        type: "scatter", mode: "markers", orientation: "h",
        x: forest.map(function (p) { return p.lift; }),
        y: forest.map(function (p) { return p.label; }),
        error_x: { type: "data", symmetric: false,
                   array: forest.map(function (p) { return p.high - p.lift; }),
                   arrayminus: forest.map(function (p) { return p.lift - p.low; }), color: "#1d2430" },
        marker: { size: 10, symbol: forest.map(function (p) { return p.significant ? "diamond" : "circle"; }),
                  color: forest.map(function (p) { return p.significant ? "#0b4f9c" : "#5c5c5c"; }) },
        text: forest.map(function (p) { return pct(p.lift) + " [" + pct(p.low) + ", " + pct(p.high) + "]" + (p.significant ? " significant" : ""); }),
        hoverinfo: "text+y"
      }], {
        font: font, margin: { l: 200, r: 20, t: 10, b: 40 }, height: 80 + 40 * forest.length,
        xaxis: { tickformat: ".1%", zeroline: true, zerolinecolor: "#a4161a", zerolinewidth: 2,
                 range: [lo - pad, hi + pad], title: { text: "relative lift" } },
        yaxis: { automargin: true, autorange: "reversed" }
      }, config);
    }
  }

  // Whole days on the axis, at least three of them: on day 0 or 1 plotly would
  // otherwise zoom into one date and label it with sub-second times.
  function dayAxis(lines) {
    var dates = [];
    lines.forEach(function (line) { dates = dates.concat(line.dates); });
    dates.sort();
    var day = 86400000, first = Date.parse(dates[0]), last = Date.parse(dates[dates.length - 1]);
    var span = Math.max(last - first, 2 * day), pad = day / 2;
    return { type: "date", tickformat: "%b %d", dtick: span > 14 * day ? 7 * day : day,
             range: [first - pad, first + span + pad] };
  }

  var series = data("series-data");
  var chart = document.getElementById("cumulative");
  if (series && chart) {
    if (!series.lines.length) { chart.textContent = "No daily numbers yet."; }
    else {
      var palette = ["#0b4f9c", "#b35900", "#0f6b2f", "#6a1b9a"];
      var traces = [];
      series.lines.forEach(function (line, i) {
        var colour = palette[i % palette.length];
        traces.push({ x: line.dates, y: line.high, mode: "lines", line: { width: 0 }, hoverinfo: "skip", showlegend: false });
        traces.push({ x: line.dates, y: line.low, mode: "lines", line: { width: 0 }, fill: "tonexty",
                      fillcolor: colour + "33", hoverinfo: "skip", showlegend: false });
        traces.push({ x: line.dates, y: line.lift, mode: "lines+markers", name: line.variant, line: { color: colour, width: 2 } });
      });
      Plotly.newPlot(chart, traces, {
        font: font, margin: { l: 60, r: 20, t: 10, b: 40 }, height: 340,
        yaxis: { tickformat: ".1%", zeroline: true, zerolinecolor: "#a4161a", title: { text: "relative lift" } },
        xaxis: dayAxis(series.lines), legend: { orientation: "h" }
      }, config);
    }
  }
})();
