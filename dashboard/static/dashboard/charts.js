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

  // A line per treatment with its interval as a band: the cumulative lift, and an
  // interleaving experiment's preference Δ (in points).
  function bandChart(series, chart, yTitle) {
    if (!series || !chart) { return; }
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
        yaxis: series.unit === "pp"
          ? { tickformat: ".1f", ticksuffix: " pp", zeroline: true, zerolinecolor: "#a4161a", title: { text: yTitle } }
          : { tickformat: ".1%", zeroline: true, zerolinecolor: "#a4161a", title: { text: yTitle } },
        xaxis: dayAxis(series.lines), legend: { orientation: "h" }
      }, config);
    }
  }
  bandChart(data("series-data"), document.getElementById("cumulative"), "relative lift");
  bandChart(data("preference-data"), document.getElementById("preference"), "preference Δ");
  // Exposed users per day (bars, new users) and in total (lines) per variant, the plan's
  // users per variant as a dashed line, phases and ramps as vertical marks.
  var exposures = data("exposures-data");
  var timelineChart = document.getElementById("exposures");
  if (exposures && timelineChart) {
    if (!exposures.dates.length) { timelineChart.textContent = "No daily numbers yet."; }
    else {
      var colours = ["#5c5c5c", "#0b4f9c", "#b35900", "#0f6b2f", "#6a1b9a"];
      var bars = [], names = Object.keys(exposures.new);
      names.forEach(function (name, i) {
        var colour = colours[i % colours.length];
        bars.push({ type: "bar", x: exposures.dates, y: exposures.new[name], name: name + " (new that day)",
                    width: 0.6 * 86400000,
                    marker: { color: colour + "88" }, hovertemplate: "%{y:,} new users<extra>" + name + "</extra>" });
        bars.push({ type: "scatter", mode: "lines+markers", x: exposures.dates, y: exposures.cumulative[name],
                    name: name + " (in total)", yaxis: "y2", line: { color: colour, width: 2 },
                    hovertemplate: "%{y:,} users in total<extra>" + name + "</extra>" });
      });
      var axis = dayAxis([{ dates: exposures.dates.concat(exposures.markers.map(function (m) { return m.date; })) }]);
      var shapes = [], notes = [];
      exposures.markers.forEach(function (m) {
        shapes.push({ type: "line", xref: "x", yref: "paper", x0: m.date, x1: m.date, y0: 0, y1: 1,
                      line: { color: "#a4161a", width: 1, dash: "dot" } });
        notes.push({ x: m.date, y: 1, xref: "x", yref: "paper", text: m.label, showarrow: false,
                     xanchor: "left", yanchor: "top", font: { size: 11, color: "#a4161a" } });
      });
      if (exposures.planned) {
        shapes.push({ type: "line", xref: "paper", yref: "y2", x0: 0, x1: 1, y0: exposures.planned, y1: exposures.planned,
                      line: { color: "#0f6b2f", width: 2, dash: "dash" } });
        notes.push({ x: 0, y: exposures.planned, xref: "paper", yref: "y2", showarrow: false, xanchor: "left",
                     yanchor: "bottom", text: "planned: " + exposures.planned.toLocaleString() + " per variant",
                     font: { size: 11, color: "#0f6b2f" } });
      }
      Plotly.newPlot(timelineChart, bars, {
        font: font, margin: { l: 60, r: 60, t: 10, b: 40 }, height: 340, barmode: "stack",
        xaxis: axis, legend: { orientation: "h" }, shapes: shapes, annotations: notes,
        yaxis: { title: { text: "new users per day" }, tickformat: ",d", rangemode: "tozero" },
        yaxis2: { title: { text: "users in total" }, overlaying: "y", side: "right", tickformat: ",d", rangemode: "tozero" }
      }, config);
    }
  }
  // Offline against online: one dot per treatment, offline NDCG change on x, online
  // result on y with its interval as an error bar; 0 marked on both axes.
  var pairs = data("offline-online-data");
  var scatter = document.getElementById("offline-online");
  if (pairs && pairs.length && scatter) {
    function trace(points, name, symbol) {
      return { type: "scatter", mode: "markers", name: name,
               x: points.map(function (p) { return p.x; }), y: points.map(function (p) { return p.y; }),
               error_y: { type: "data", symmetric: false, color: "#1d2430",
                          array: points.map(function (p) { return p.high === null ? 0 : p.high - p.y; }),
                          arrayminus: points.map(function (p) { return p.low === null ? 0 : p.y - p.low; }) },
               marker: { size: 11, symbol: symbol,
                         color: points.map(function (p) { return p.significant ? "#0b4f9c" : "#5c5c5c"; }) },
               text: points.map(function (p) {
                 // A preference Δ is a difference of shares of users: in points, as on the results page.
                 var f = p.interleaving ? function (x) { return (x * 100).toFixed(1) + " pp"; } : pct;
                 return p.label + "<br>offline " + pct(p.x) + "<br>online " + f(p.y) +
                   (p.low === null ? "" : " [" + f(p.low) + ", " + f(p.high) + "]") + (p.significant ? " significant" : "");
               }), hoverinfo: "text" };
    }
    var ab = pairs.filter(function (p) { return !p.interleaving; });
    var il = pairs.filter(function (p) { return p.interleaving; });
    var traces = [];
    if (ab.length) { traces.push(trace(ab, "A/B test: relative lift", "circle")); }
    if (il.length) { traces.push(trace(il, "interleaving: preference Δ", "diamond")); }
    Plotly.newPlot(scatter, traces, {
      font: font, margin: { l: 70, r: 20, t: 10, b: 50 }, height: 420, legend: { orientation: "h" },
      xaxis: { tickformat: ".1%", zeroline: true, zerolinecolor: "#a4161a", title: { text: "offline NDCG@10 change (relative)" } },
      yaxis: { tickformat: ".1%", zeroline: true, zerolinecolor: "#a4161a", title: { text: il.length ? "online: relative lift (A/B), Δ as % points (interleaving)" : "online relative lift" } }
    }, config);
  }
})();
