// The report's interactive parts: a chart of any metric, the metrics tables and the rollout explorer.
// Model text is untrusted: it only ever reaches the page as text nodes (el() below), never as HTML.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const LIST_PAGE = 200;  // items listed at a time: thousands of rollouts stay quick to filter

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined && child !== false) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function fmt(value) {
    if (value === null || value === undefined) return "-";
    if (typeof value !== "number") return String(value);
    if (Number.isInteger(value)) return String(value);
    if (Math.abs(value) >= 1000) return value.toFixed(0);
    return String(Number(value.toPrecision(3)));
  }

  function colorOf(run, index) {
    const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
    return DATA.colors[run.method.split("+")[0]] || palette[index % palette.length];
  }

  // -- metrics ----------------------------------------------------------------------------------
  const metricNames = [...new Set(DATA.runs.flatMap(run => run.metrics.flatMap(row =>
    Object.keys(row).filter(key => key !== "step" && typeof row[key] === "number"))))].sort();
  // The chart starts on a metric the page's picture does not already draw (the page says which).
  let selectedMetric = (DATA.chart_first || []).find(name => metricNames.includes(name)) || metricNames[0];

  // Axis ticks at round values (1, 2, 2.5 or 5 times a power of ten) covering [lo, hi]; `whole`: no
  // step below 1 (training steps).
  function niceTicks(lo, hi, count, whole) {
    const raw = (hi - lo) / count, power = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = [1, 2, 2.5, 5, 10].map(m => m * power).find(s => s >= raw * (1 - 1e-9));
    if (whole) step = Math.max(1, Math.round(step));
    const first = Math.floor(lo / step + 1e-9) * step, ticks = [];
    for (let value = first; value < hi + step * (1 - 1e-9); value += step) ticks.push(Number(value.toPrecision(12)));
    return ticks;
  }

  function drawChart() {
    const box = document.getElementById("chart");
    if (!box) return;
    const width = 640, height = 300, left = 56, right = 12, top = 24, bottom = 36;
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "chart");
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    const add = (tag, attrs, text) => {
      const node = document.createElementNS(ns, tag);
      for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
      if (text !== undefined) node.textContent = text;
      svg.append(node);
      return node;
    };
    const series = DATA.runs.map((run, index) => ({
      run, color: colorOf(run, index),
      points: run.metrics.filter(row => typeof row[selectedMetric] === "number").map(row => [row.step, row[selectedMetric]]),
    })).filter(s => s.points.length);
    const all = series.flatMap(s => s.points);
    add("text", {x: left, y: 16, "font-size": 13}, selectedMetric || "no metrics");
    if (all.length) {
      let [x0, x1] = [Math.min(...all.map(p => p[0])), Math.max(...all.map(p => p[0]))];
      let [y0, y1] = [Math.min(...all.map(p => p[1])), Math.max(...all.map(p => p[1]))];
      if (x1 === x0) x1 = x0 + 1;
      if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
      const yTicks = niceTicks(y0, y1, 4, false), xTicks = niceTicks(x0, x1, 5, true);
      [y0, y1, x0, x1] = [yTicks[0], yTicks[yTicks.length - 1], xTicks[0], xTicks[xTicks.length - 1]];
      const sx = x => left + (x - x0) / (x1 - x0) * (width - left - right);
      const sy = y => height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom);
      for (const y of yTicks) {
        add("line", {x1: left, x2: width - right, y1: sy(y), y2: sy(y), stroke: "#eee"});
        add("text", {x: left - 4, y: sy(y) + 4, "font-size": 11, "text-anchor": "end"}, fmt(y));
      }
      for (const x of xTicks) add("text", {x: sx(x), y: height - bottom + 14, "font-size": 11, "text-anchor": "middle"}, fmt(x));
      add("text", {x: (width + left) / 2, y: height - 6, "font-size": 11, "text-anchor": "middle"}, "step");
      for (const s of series) {
        add("polyline", {fill: "none", stroke: s.color, "stroke-width": 1.6,
                         points: s.points.map(p => `${sx(p[0])},${sy(p[1])}`).join(" ")});
        for (const p of s.points) add("circle", {cx: sx(p[0]), cy: sy(p[1]), r: 2.5, fill: s.color});
      }
    }
    box.replaceChildren(svg);
    if (DATA.runs.length > 1) {
      box.append(el("div", {}, ...series.map(s => el("span", {class: "badge", style: `color:${s.color}`}, "\u25A0 ", s.run.name))));
    }
    document.querySelectorAll(".metric-link").forEach(node => node.classList.toggle("selected", node.dataset.metric === selectedMetric));
    const picker = document.getElementById("metric-picker");
    if (picker) picker.value = selectedMetric;
  }

  function selectMetric(name) { selectedMetric = name; drawChart(); }

  function metricsSummary() {
    const box = document.getElementById("metrics-summary");
    if (!box || DATA.runs.length !== 1) return;
    const rows = DATA.runs[0].metrics;
    const table = el("table", {}, el("tr", {}, ...["metric", "first", "last", "min", "max", "mean", "steps"].map(h => el("th", {}, h))));
    for (const name of metricNames) {
      const values = rows.filter(row => typeof row[name] === "number");
      const numbers = values.map(row => row[name]);
      table.append(el("tr", {},
        el("td", {}, el("span", {class: "metric-link", "data-metric": name, onclick: () => selectMetric(name)}, name)),
        ...[numbers[0], numbers[numbers.length - 1], Math.min(...numbers), Math.max(...numbers),
            numbers.reduce((a, b) => a + b, 0) / numbers.length, numbers.length].map(v => el("td", {}, fmt(v)))));
    }
    box.replaceChildren(el("div", {class: "scroll"}, table));
    // Every step's values: built the first time it is opened.
    const details = document.getElementById("metrics-steps");
    details.addEventListener("toggle", () => {
      if (!details.open || details.dataset.built) return;
      details.dataset.built = "1";
      const full = el("table", {}, el("tr", {}, el("th", {}, "step"), ...metricNames.map(name => el("th", {}, name))));
      for (const row of rows) full.append(el("tr", {}, el("td", {}, row.step), ...metricNames.map(name => el("td", {}, fmt(row[name])))));
      details.append(el("div", {class: "scroll"}, full));
    });
  }

  function metricPicker() {
    const picker = document.getElementById("metric-picker");
    if (!picker) return;
    for (const name of metricNames) picker.append(el("option", {value: name}, name));
    picker.addEventListener("change", () => selectMetric(picker.value));
  }

  // -- rollout explorer -----------------------------------------------------------------------
  const items = DATA.items;
  const filters = {};
  let shown = LIST_PAGE;

  function option(value, label) { return el("option", {value}, label); }

  function filterSelect(name, label, options) {
    const select = el("select", {id: `filter-${name}`}, option("", "any"), ...options.map(([value, text]) => option(value, text)));
    select.addEventListener("change", () => { filters[name] = select.value; shown = LIST_PAGE; renderList(); });
    return el("label", {}, label, " ", select);
  }

  function explorerFilters() {
    const distinct = values => [...new Set(values)].sort((a, b) => (typeof a === "number" ? a - b : String(a).localeCompare(String(b))));
    const methods = distinct(DATA.runs.map(run => run.method));
    const controls = [filterSelect("method", "method", methods.map(m => [m, m]))];
    if (DATA.runs.length > 1) controls.push(filterSelect("run", "run", DATA.runs.map((run, i) => [String(i), run.name])));
    controls.push(filterSelect("step", "step", distinct(items.map(item => item.step)).map(s => [String(s), String(s)])));
    controls.push(filterSelect("reward", "reward", [["signal", "a group with mixed rewards"], ["some", "some reward > 0"],
                                                    ["none", "all rewards 0"], ["all", "all rewards 1"]]));
    controls.push(filterSelect("source", "reset source", [["-", "no reset"],
                  ...distinct(items.flatMap(item => item.sources)).map(s => [s, s])]));
    const search = el("input", {id: "filter-text", type: "search", placeholder: "problem id or question contains"});
    search.addEventListener("input", () => { filters.text = search.value.toLowerCase(); shown = LIST_PAGE; renderList(); });
    controls.push(search);
    document.getElementById("filters").replaceChildren(...controls);
  }

  function matches(item) {
    const run = DATA.runs[item.run];
    if (filters.method && run.method !== filters.method) return false;
    if (filters.run && String(item.run) !== filters.run) return false;
    if (filters.step && String(item.step) !== filters.step) return false;
    if (filters.reward === "signal" && !item.signal) return false;
    if (filters.reward === "some" && !(item.max_reward > 0)) return false;
    if (filters.reward === "none" && item.max_reward !== 0) return false;
    if (filters.reward === "all" && item.reward !== 1) return false;
    if (filters.source === "-" && item.sources.length) return false;
    if (filters.source && filters.source !== "-" && !item.sources.includes(filters.source)) return false;
    if (filters.text && !(item.problem.toLowerCase().includes(filters.text)
                          || (item.question || "").toLowerCase().includes(filters.text))) return false;
    return true;
  }

  function itemKey(item) { return `${item.run}/${item.step}/${item.problem}`; }

  function renderList() {
    const list = document.getElementById("item-list");
    if (!list) return;
    const matching = items.filter(matches);
    document.getElementById("item-count").textContent = `${matching.length} of ${items.length} problem-steps`;
    const nodes = matching.slice(0, shown).map(item => el("div", {class: "item", "data-key": itemKey(item), onclick: event => select(item, event.currentTarget)},
      el("div", {}, `step ${item.step} \u00b7 ${item.problem}`, DATA.runs.length > 1 ? ` \u00b7 ${DATA.runs[item.run].name}` : ""),
      el("div", {}, el("span", {class: "badge"}, `reward ${fmt(item.reward)}`), item.signal ? el("span", {class: "badge"}, "signal") : null,
         ...item.sources.map(s => el("span", {class: "badge"}, s)))));
    if (matching.length > shown) {
      nodes.push(el("button", {onclick: () => { shown += LIST_PAGE; renderList(); }}, `show ${Math.min(LIST_PAGE, matching.length - shown)} more`));
    }
    list.replaceChildren(...nodes);
  }

  function rewardBadge(reward) {
    return el("span", {class: "badge " + (reward >= 1 ? "right" : reward > 0 ? "" : "wrong")}, `reward ${fmt(reward)}`);
  }

  function thoughtList(thoughts, marks) {
    return el("div", {class: "thoughts"}, ...(thoughts || []).map((text, index) => {
      const n = index + 1, classes = ["thought"], notes = [];
      if (n <= marks.prefix) classes.push("prefix");
      if (n === marks.reset) { classes.push("reset"); notes.push("reset here"); }
      if (n === marks.firstError) { classes.push("first-error"); notes.push("first error"); }
      const empty = !(text || "").trim();
      if (empty) notes.push("empty");
      return el("div", {class: classes.join(" "), title: notes.join(", ")}, el("span", {class: "n"}, n + (notes.length ? ` (${notes.join(", ")})` : "")),
                empty ? el("span", {class: "muted"}, "(the model closed this thought without writing anything)") : text);
    }));
  }

  // The task's first error of a chain, as a badge and the thought to outline. A right answer whose
  // "first error" is an empty thought skipped a step but still got there: said so, not outlined.
  function firstErrorOf(chain) {
    const value = chain.first_error;
    if (value === null || value === undefined) return {text: null, mark: null};
    if (value === 0) return {text: "no wrong thought", mark: null};
    if (chain.reward >= 1 && !((chain.thoughts || [])[value - 1] || "").trim()) {
      return {text: `thought ${value} empty, answer right`, mark: null};
    }
    return {text: `first error: thought ${value}`, mark: value};
  }

  // What a sample of the other baselines is (SCoRe, Critique-GRPO, SPO-Tree), as a badge; null for
  // fresh chains and resets, which their groups already say.
  function kindNote(chain) {
    const follows = chain.follows === null || chain.follows === undefined ? "" : ` of #${chain.follows + 1}`;
    if (chain.kind === "attempt") return "first attempt";
    if (chain.kind === "correction") return `correction${follows}`;
    if (chain.kind === "refinement") return `refinement${follows} (off-policy)`;
    if (chain.kind === "leaf") return `tree leaf ${(chain.tree_path || []).map(n => n + 1).join(".")}`;
    if (chain.kind === "segment") return "tree segment";
    return null;
  }

  function advantageText(chain) {
    if (chain.segment_advantages) return `advantages ${chain.segment_advantages.map(a => a.toFixed(3)).join(" / ")} (per segment)`;
    const shaped = chain.shaped_reward === null || chain.shaped_reward === undefined ? "" : ` \u00b7 shaped reward ${fmt(chain.shaped_reward)}`;
    return `advantage ${chain.advantage === null ? "-" : chain.advantage.toFixed(3)}${shaped}`;
  }

  function chainNode(chain, prefix) {
    const firstError = firstErrorOf(chain);
    const note = kindNote(chain);
    return el("div", {class: "chain"},
      el("div", {class: "chain-head"}, rewardBadge(chain.reward), note ? el("span", {class: "badge"}, note) : null,
         el("span", {class: "badge"}, advantageText(chain)),
         el("span", {class: "badge"}, `answer ${chain.answer === null ? "none" : chain.answer}`),
         firstError.text && el("span", {class: "badge"}, firstError.text),
         el("span", {class: "muted"}, `${chain.stop_reason || ""} \u00b7 ${fmt(chain.new_tokens)} new tokens`),
         prefix ? el("span", {class: "muted"}, prefix === 1 ? " \u00b7 thought 1 is the parent's prefix" : ` \u00b7 thoughts 1-${prefix} are the parent's prefix`) : null),
      thoughtList(chain.thoughts, {prefix, firstError: firstError.mark}));
  }

  function meanReward(chains) {
    return chains.length ? chains.reduce((a, c) => a + (c.reward || 0), 0) / chains.length : null;
  }

  function select(item, node) {
    document.querySelectorAll(".item.selected").forEach(n => n.classList.remove("selected"));
    if (node) node.classList.add("selected");
    const chains = item.chains, run = DATA.runs[item.run];
    const parts = [el("h3", {}, `${run.name} (${run.method}) \u00b7 step ${item.step} \u00b7 ${item.problem}`)];
    if (item.question !== null) parts.push(el("div", {class: "question"}, item.question), el("div", {}, "gold answer: ", el("b", {}, item.gold)));
    // Every group trained from the prompt: fresh chains, and the other baselines' pairs, refined groups and trees.
    const fromPrompt = chains.filter(c => c.kind !== "reset" && c.group_id !== null && c.group_id !== undefined);
    for (const id of [...new Set(fromPrompt.map(c => c.group_id))]) {
      const members = fromPrompt.filter(c => c.group_id === id);
      const plain = members.every(c => c.kind === "fresh");
      parts.push(el("div", {class: "group"}, el("b", {}, `${plain ? "fresh group" : "group"} ${id}`),
        el("span", {class: "muted"}, ` \u00b7 ${members.length} ${plain ? "chains from the prompt" : "samples, trained under the prompt"} \u00b7 mean reward ${fmt(meanReward(members))}`),
        ...members.map(c => chainNode(c, 0))));
    }
    chains.filter(c => c.kind === "parent").forEach((parent, index) => {
      const children = chains.filter(c => c.kind === "reset" && c.parent === index);
      parts.push(el("div", {class: "group parent"},
        el("b", {}, `parent ${index + 1}`),
        el("span", {class: "muted"}, ` \u00b7 sampled, not trained \u00b7 reset at thought ${fmt(parent.reset_step)} (${parent.reset_source || "?"})`),
        el("div", {class: "chain-head"}, rewardBadge(parent.reward), el("span", {class: "badge"}, `answer ${parent.answer === null ? "none" : parent.answer}`),
           firstErrorOf(parent).text && el("span", {class: "badge"}, `task's ${firstErrorOf(parent).text}`)),
        thoughtList(parent.thoughts, {prefix: 0, reset: parent.reset_step, firstError: firstErrorOf(parent).mark}),
        parent.localization !== null && parent.localization !== undefined
          ? el("div", {}, el("div", {class: "muted"}, "localization answer:"), el("div", {class: "localization"}, parent.localization)) : null,
        children.length ? el("div", {class: "group"}, el("b", {}, `reset group ${children[0].group_id}`),
          el("span", {class: "muted"}, ` \u00b7 ${children.length} continuations from thought ${fmt(parent.reset_step)} \u00b7 mean reward ${fmt(meanReward(children))}`),
          ...children.map(c => chainNode(c, (c.reset_step || 1) - 1))) : null));
    });
    const orphans = chains.filter(c => c.kind === "reset" && c.parent === undefined);
    if (orphans.length) {
      parts.push(el("div", {class: "group"}, el("b", {}, "reset continuations"), ...orphans.map(c => chainNode(c, (c.reset_step || 1) - 1))));
    }
    const untrained = chains.filter(c => c.kind !== "unused" && c.kind !== "parent" && (c.group_id === null || c.group_id === undefined));
    if (untrained.length) {
      const details = el("details", {}, el("summary", {}, `${untrained.length} generated, not trained (refinements not kept, tree segments)`));
      details.addEventListener("toggle", () => { if (details.open && details.children.length === 1) details.append(...untrained.map(c => chainNode(c, 0))); });
      parts.push(details);
    }
    const unused = chains.filter(c => c.kind === "unused");
    if (unused.length) {
      const details = el("details", {}, el("summary", {}, `${unused.length} unused draws (sampled while looking for a failure, not trained)`));
      details.addEventListener("toggle", () => { if (details.open && details.children.length === 1) details.append(...unused.map(c => chainNode(c, 0))); });
      parts.push(details);
    }
    document.getElementById("detail").replaceChildren(...parts);
  }

  metricPicker();
  metricsSummary();
  drawChart();
  if (document.getElementById("item-list")) {
    explorerFilters();
    renderList();
  }
})();
