// grpc-load's charts: draws an inline SVG into every element with data-chart="NAME" from the
// page's JSON (script#report-data, charts.NAME). No libraries, so the page works offline.
// On <html> it leaves data-render="ok" (or "error"), data-charts-rendered, data-chart-points,
// and each chart's data-rendered / its SVG's data-points: the number of non-zero data points
// drawn (the headless-browser test reads these).
(function () {
  'use strict';
  var root = document.documentElement;
  var NS = 'http://www.w3.org/2000/svg';
  var W = 680, H = 320, L = 78, R = 24, T = 34, B = 78;
  var COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

  function fail(msg) {
    window.grpcLoadErrors.push(String(msg));
    root.setAttribute('data-js-errors', window.grpcLoadErrors.join(' | '));
  }

  function el(name, attrs, parent, text) {
    var e = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) { e.textContent = text; }
    if (parent) { parent.appendChild(e); }
    return e;
  }

  function fmt(v, unit) {
    if (unit === 'ns') {
      if (v >= 1e9) { return +(v / 1e9).toPrecision(3) + ' s'; }
      if (v >= 1e6) { return +(v / 1e6).toPrecision(3) + ' ms'; }
      if (v >= 1e3) { return +(v / 1e3).toPrecision(3) + ' \u00b5s'; }
      return Math.round(v) + ' ns';
    }
    if (unit === 'bytes') {
      if (v >= 1048576) { return +(v / 1048576).toPrecision(3) + ' MiB'; }
      if (v >= 1024) { return +(v / 1024).toPrecision(3) + ' KiB'; }
      return v + ' B';
    }
    if (unit === 's') { return +v.toPrecision(3) + ' s'; }
    if (Math.abs(v) >= 1e6) { return +(v / 1e6).toPrecision(3) + 'M'; }
    if (Math.abs(v) >= 1e4) { return +(v / 1e3).toPrecision(3) + 'k'; }
    return String(+v.toPrecision(4));
  }

  // A function from value to pixel, linear or log10.
  function scale(lo, hi, log, a, b) {
    var l = log ? Math.log10(lo) : lo;
    var h = log ? Math.log10(hi) : hi;
    if (h <= l) { h = l + 1; }
    return function (v) { return a + ((log ? Math.log10(v) : v) - l) / (h - l) * (b - a); };
  }

  function ticks(lo, hi, log) {
    var out = [];
    var v;
    if (log) {
      // Decades; with fewer than three of them in range, also 2x and 5x marks.
      var few = Math.log10(hi / lo) < 2;
      for (var e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
        (few ? [1, 2, 5] : [1]).forEach(function (m) {
          var t = m * Math.pow(10, e);
          if (t >= lo && t <= hi) { out.push(t); }
        });
      }
      return out;
    }
    var raw = (hi - lo) / 5;
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * mag; })
        .filter(function (s) { return s >= raw; })[0];
    for (v = Math.ceil(lo / step) * step; v <= hi; v += step) { out.push(v); }
    return out;
  }

  function frame(host, spec) {
    var svg = el('svg', {viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img',
      'class': 'chart'});
    el('title', {}, svg, spec.title);
    el('text', {x: W / 2, y: 20, 'text-anchor': 'middle', 'class': 'chart-title'}, svg,
        spec.title);
    el('line', {x1: L, y1: H - B, x2: W - R, y2: H - B, 'class': 'axis'}, svg);
    el('line', {x1: L, y1: T, x2: L, y2: H - B, 'class': 'axis'}, svg);
    if (spec.xTitle) {
      el('text', {x: (L + W - R) / 2, y: H - 8, 'text-anchor': 'middle', 'class': 'axis-title'},
          svg, spec.xTitle);
    }
    if (spec.yTitle) {
      var cy = (T + H - B) / 2;
      el('text', {x: 16, y: cy, 'text-anchor': 'middle', transform: 'rotate(-90 16 ' + cy + ')',
        'class': 'axis-title'}, svg, spec.yTitle);
    }
    host.appendChild(svg);
    return svg;
  }

  function yAxis(svg, lo, hi, log, unit) {
    var y = scale(lo, hi, log, H - B, T);
    ticks(lo, hi, log).forEach(function (v) {
      var py = y(v);
      el('line', {x1: L - 4, y1: py, x2: W - R, y2: py, 'class': 'grid'}, svg);
      el('text', {x: L - 7, y: py + 4, 'text-anchor': 'end', 'class': 'tick'}, svg, fmt(v, unit));
    });
    return y;
  }

  function xLabel(svg, x, text) {
    el('text', {x: x, y: H - B + 14, 'text-anchor': 'end', 'class': 'tick',
      transform: 'rotate(-35 ' + x + ' ' + (H - B + 14) + ')'}, svg, text);
  }

  function bar(host, spec) {
    var svg = frame(host, spec);
    var vals = spec.values;
    var n = vals.length;
    var max = Math.max.apply(null, vals.concat([1]));
    var log = !!spec.logY;
    // Log counts start below 1 so a bar of one call still shows.
    var lo = log ? 0.5 : 0;
    var hi = log ? Math.pow(10, Math.ceil(Math.log10(max * 1.01))) : max * 1.1;
    var y = yAxis(svg, lo, hi, log, spec.unit);
    var bw = (W - L - R) / n;
    var drawn = 0;
    var every = Math.ceil(n / 16);
    vals.forEach(function (v, i) {
      var x = L + i * bw;
      if (v > 0) {
        var top = y(v);
        var r = el('rect', {x: x + 1, y: top, width: Math.max(1, bw - 2), height: H - B - top,
          'class': 'bar', 'data-value': v}, svg);
        el('title', {}, r, spec.labels[i] + ': ' + fmt(v, spec.unit));
        drawn++;
      }
      if (i % every === 0) { xLabel(svg, x + bw / 2, spec.labels[i]); }
    });
    svg.setAttribute('data-points', drawn);
    return drawn;
  }

  function line(host, spec) {
    var svg = frame(host, spec);
    var xs = spec.x;
    var ys = [];
    spec.series.forEach(function (s) {
      s.values.forEach(function (v) { if (v > 0 || !spec.logY) { ys.push(v); } });
    });
    if (ys.length === 0) { throw new Error('no values'); }
    var ymax = Math.max.apply(null, ys);
    var ylo = spec.logY ? Math.min.apply(null, ys) / 1.5 : 0;
    var yhi = spec.logY ? ymax * 1.5 : Math.max(ymax * 1.1, 1e-9);
    var x = scale(Math.min.apply(null, xs), Math.max.apply(null, xs), !!spec.logX,
        L + 24, W - R - 24);
    var y = yAxis(svg, ylo, yhi, !!spec.logY, spec.unit);
    xs.forEach(function (v) { xLabel(svg, x(v), fmt(v, spec.xUnit)); });
    var drawn = 0;
    spec.series.forEach(function (s, si) {
      var color = COLORS[si % COLORS.length];
      var pts = [];
      s.values.forEach(function (v, i) {
        if (!spec.logY || v > 0) { pts.push(x(xs[i]).toFixed(1) + ',' + y(v).toFixed(1)); }
      });
      el('polyline', {points: pts.join(' '), fill: 'none', stroke: color, 'stroke-width': 2,
        'class': 'series', 'data-series': s.name}, svg);
      s.values.forEach(function (v, i) {
        if (spec.logY && !(v > 0)) { return; }
        var c = el('circle', {cx: x(xs[i]).toFixed(1), cy: y(v).toFixed(1), r: 4, fill: color,
          'class': 'point', 'data-value': v}, svg);
        el('title', {}, c, s.name + ' at ' + fmt(xs[i], spec.xUnit) + ': ' + fmt(v, spec.unit));
        if (v > 0) { drawn++; }
      });
      var ly = T + 4 + 16 * si;
      el('rect', {x: W - R - 130, y: ly, width: 12, height: 12, fill: color}, svg);
      el('text', {x: W - R - 112, y: ly + 10, 'class': 'legend'}, svg, s.name);
    });
    svg.setAttribute('data-points', drawn);
    return drawn;
  }

  var data;
  try {
    data = JSON.parse(document.getElementById('report-data').textContent);
  } catch (e) {
    fail('report data: ' + e.message);
    root.setAttribute('data-render', 'error');
    return;
  }
  var charts = 0;
  var points = 0;
  var hosts = document.querySelectorAll('[data-chart]');
  for (var i = 0; i < hosts.length; i++) {
    var host = hosts[i];
    var name = host.getAttribute('data-chart');
    try {
      var spec = data.charts[name];
      if (!spec) { throw new Error('no data'); }
      var n = spec.kind === 'line' ? line(host, spec) : bar(host, spec);
      host.setAttribute('data-rendered', n);
      charts++;
      points += n;
    } catch (e) {
      fail(name + ': ' + e.message);
    }
  }
  root.setAttribute('data-charts-rendered', charts);
  root.setAttribute('data-chart-points', points);
  root.setAttribute('data-render', window.grpcLoadErrors.length ? 'error' : 'ok');
})();
