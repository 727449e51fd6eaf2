// The shopstream dashboard: every panel is one GET /analytics/... call drawn with Chart.js.
// It polls the summary and redraws everything when the warehouse publishes new data.
"use strict";

const REFRESH_MS = Number(new URLSearchParams(location.search).get("refresh") || 5) * 1000;
const COLORS = { blue: "#2563eb", orange: "#f97316", green: "#16a34a", red: "#dc2626", violet: "#8b5cf6" };
const state = { grain: "month", version: null, loading: 0, charts: {} };

const money = new Intl.NumberFormat("en-GB", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const whole = new Intl.NumberFormat("en-GB", { maximumFractionDigits: 0 });
const percent = new Intl.NumberFormat("en-GB", { style: "percent", maximumFractionDigits: 1 });
const $ = (selector) => document.querySelector(selector);

// -- data ---------------------------------------------------------------------------

function rangeParams() {
  const params = {};
  const from = $("#from").value;
  const through = $("#to").value;
  if (from) params.from = from;
  if (through) {  // the page says "through" a day; the API's `to` is exclusive
    const next = new Date(through + "T00:00:00Z");
    next.setUTCDate(next.getUTCDate() + 1);
    params.to = next.toISOString().slice(0, 10);
  }
  return params;
}

// The page is public; its data needs an API key with analytics:read. `shopstream up`
// prints the dashboard URL with `#key=...` (a fragment never reaches any server); the key
// is kept for this tab only. Without one, the header asks for it.
function apiKey() {
  const fromUrl = new URLSearchParams(location.hash.slice(1)).get("key");
  if (fromUrl) {
    sessionStorage.setItem("shopstream-key", fromUrl);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("shopstream-key");
}

function askForKey(message) {
  const form = $("#key-form");
  form.hidden = false;
  $("#key-message").textContent = message;
}

async function api(path, params = {}) {
  const query = new URLSearchParams({ ...rangeParams(), ...params });
  const key = apiKey();
  const headers = key ? { Authorization: `Bearer ${key}` } : {};
  const response = await fetch(`analytics/${path}?${query}`, { cache: "no-store", headers });
  if (response.status === 401 || response.status === 403) {
    askForKey(response.status === 401 ? "This dashboard needs an API key (scope analytics:read)."
      : "This key may not read analytics (it needs analytics:read).");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.message || `${path}: HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

// -- formatting ---------------------------------------------------------------------

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function bucketLabel(bucket, grain) {
  const [date, time] = bucket.split(" ");
  const [year, month] = date.split("-");
  switch (grain) {
    case "year": return year;
    case "month": return `${MONTHS[Number(month) - 1]} ${year}`;
    case "week": return `w/c ${date}`;
    case "day": return date;
    default: return `${date} ${time.slice(0, 5)}`;
  }
}

function setKpi(id, value, exact, sub) {
  const tile = $(id);
  tile.querySelector(".value").textContent = value;
  tile.querySelector(".value").dataset.exact = exact;
  tile.querySelector(".sub").textContent = sub || "";
}

// -- charts -------------------------------------------------------------------------

function chart(id, type, options = {}) {
  const existing = state.charts[id];
  if (existing && existing.config.type !== type) {
    existing.destroy();
    delete state.charts[id];
  } else if (existing) {  // tooltips read the data of the latest load
    existing.options.plugins.tooltip.callbacks = options.tooltip || {};
    return existing;
  }
  const horizontal = options.indexAxis === "y";
  state.charts[id] = new Chart(document.getElementById(id), {
    type,
    data: { labels: [], datasets: [{ data: [], backgroundColor: options.color || COLORS.blue,
                                     borderColor: options.color || COLORS.blue, borderWidth: type === "line" ? 2 : 0,
                                     pointRadius: type === "line" ? 2 : 0, borderRadius: 3, tension: 0.2 }] },
    options: {
      animation: false,
      maintainAspectRatio: false,
      indexAxis: options.indexAxis || "x",
      plugins: { legend: { display: false }, tooltip: { callbacks: options.tooltip || {} } },
      scales: {
        [horizontal ? "x" : "y"]: { beginAtZero: true, ticks: { callback: options.ticks || ((v) => whole.format(v)) } },
        [horizontal ? "y" : "x"]: { grid: { display: false }, ticks: { autoSkip: true, maxRotation: 0 } },
      },
    },
  });
  return state.charts[id];
}

function draw(id, labels, values, extra = {}) {
  const target = state.charts[id];
  target.data.labels = labels;
  target.data.datasets[0].data = values;
  Object.assign(target.data.datasets[0], extra);
  target.update();
}

function moneyTooltip(context) {
  return money.format(context.parsed[context.chart.options.indexAxis === "y" ? "x" : "y"]);
}

// -- panels -------------------------------------------------------------------------

async function loadSummary() {
  const s = await api("summary");
  setKpi("#kpi-net-revenue", money.format(Number(s.net_revenue)), s.net_revenue,
         `gross ${money.format(Number(s.gross_sales))} · returns ${money.format(Number(s.returns))}`);
  setKpi("#kpi-orders", whole.format(s.orders), s.orders, `${whole.format(s.cancellations)} cancellations`);
  setKpi("#kpi-customers", whole.format(s.customers), s.customers, `${whole.format(s.lines)} lines`);
  setKpi("#kpi-aov", money.format(Number(s.average_order_value)), s.average_order_value, "gross sales ÷ orders");
  $("#footer-data").textContent = s.first_invoice_date
    ? `Invoices from ${s.first_invoice_date.slice(0, 10)} to ${s.last_invoice_date.slice(0, 10)}`
    : "No sales in this period";
  return s;
}

async function loadSales() {
  const grain = state.grain;
  const [sales, average, tops] = await Promise.all([
    api("sales", { grain }), api("sales/average", { grain }), api("products/top-per-bucket", { grain }),
  ]);
  if (grain !== state.grain) return;  // the user switched again meanwhile
  const best = Object.fromEntries(tops.buckets.map((b) => [b.bucket, b]));
  const buckets = sales.buckets;
  chart("sales-chart", grain === "hour" || grain === "day" ? "line" : "bar", {
    tooltip: {
      label: moneyTooltip,
      afterLabel: (context) => {
        const top = best[buckets[context.dataIndex].bucket];
        return top ? `best seller: ${top.description || top.stock_code} (${whole.format(top.quantity)})` : "";
      },
    },
  });
  const salesChart = state.charts["sales-chart"];
  draw("sales-chart", buckets.map((b) => bucketLabel(b.bucket, grain)), buckets.map((b) => Number(b.net_revenue)),
       { exact: buckets.map((b) => b.net_revenue) });
  salesChart.canvas.dataset.grain = grain;
  drawBestSellers(tops.buckets.slice(-12).reverse(), grain);
  $("#sales-average").textContent = buckets.length
    ? `${whole.format(average.buckets)} ${grain}s with sales · average ${money.format(Number(average.average))} per ${grain}`
    : "No sales in this period";
  const cancellations = await api("cancellations", { grain: grain === "hour" ? "day" : grain });
  chart("cancellations-chart", "line", { color: COLORS.red, ticks: (v) => percent.format(v),
                                         tooltip: { label: (c) => percent.format(c.parsed.y) } });
  draw("cancellations-chart", cancellations.buckets.map((b) => bucketLabel(b.bucket, cancellations.grain)),
       cancellations.buckets.map((b) => b.rate));
  $("#cancellation-total").textContent =
    `${whole.format(cancellations.cancellations)} of ${whole.format(cancellations.invoices)} invoices cancelled ` +
    `(${percent.format(cancellations.rate)}), per ${cancellations.grain}`;
}

async function loadProfiles() {
  const [hours, weekdays] = await Promise.all([api("sales/profile", { by: "hour" }), api("sales/profile", { by: "weekday" })]);
  chart("hour-chart", "bar", { color: COLORS.orange, tooltip: { label: moneyTooltip } });
  draw("hour-chart", hours.slots.map((s) => `${String(s.hour).padStart(2, "0")}:00`), hours.slots.map((s) => Number(s.net_revenue)));
  chart("weekday-chart", "bar", { color: COLORS.green, tooltip: { label: moneyTooltip } });
  draw("weekday-chart", weekdays.slots.map((s) => s.name.slice(0, 3)), weekdays.slots.map((s) => Number(s.net_revenue)));
}

async function loadProducts() {
  const top = await api("products/top", { limit: 10 });
  chart("products-chart", "bar", { indexAxis: "y", color: COLORS.violet,
                                   tooltip: { label: (c) => `${whole.format(c.parsed.x)} units` } });
  draw("products-chart", top.products.map((p) => `${p.stock_code} ${(p.description || "").trim()}`.slice(0, 38)),
       top.products.map((p) => p.quantity), { codes: top.products.map((p) => p.stock_code) });
}

async function loadInvoices() {
  const top = await api("invoices/top", { limit: 10 });
  const body = $("#invoices-table tbody");
  body.replaceChildren(...top.invoices.map((invoice) => {
    const row = document.createElement("tr");
    row.dataset.invoice = invoice.invoice_no;
    for (const [text, cls] of [[invoice.rank], [invoice.invoice_no], [invoice.invoice_date.slice(0, 16)],
                               [invoice.customer_id || "guest"], [invoice.country],
                               [money.format(Number(invoice.total)), "num"]]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      if (cls) { cell.className = cls; cell.dataset.exact = invoice.total; }
      row.append(cell);
    }
    return row;
  }));
}

async function loadCountries() {
  const countries = (await api("countries")).countries.slice(0, 12);
  chart("countries-chart", "bar", { indexAxis: "y", color: COLORS.blue, tooltip: {
    label: moneyTooltip,
    afterLabel: (c) => `${whole.format(countries[c.dataIndex].invoices)} invoices · ${whole.format(countries[c.dataIndex].customers)} customers`,
  } });
  draw("countries-chart", countries.map((c) => c.country), countries.map((c) => Number(c.net_revenue)));
  // the home market dwarfs the rest: a log axis keeps the others readable
  const x = state.charts["countries-chart"].options.scales.x;
  const positive = countries.every((c) => Number(c.net_revenue) > 0);
  x.type = positive && countries.length > 1 ? "logarithmic" : "linear";
  x.ticks.callback = (v) => (x.type === "linear" || Number.isInteger(Math.log10(v)) ? whole.format(v) : "");
  state.charts["countries-chart"].update();
}

async function loadCustomers() {
  const [rfm, cohorts] = await Promise.all([api("customers/rfm", { limit: 0 }), api("customers/cohorts")]);
  chart("rfm-chart", "bar", { indexAxis: "y", color: COLORS.green, tooltip: {
    label: (c) => `${whole.format(c.parsed.x)} customers (${percent.format(rfm.segments[c.dataIndex].share)})`,
    afterLabel: (c) => `net spend ${money.format(Number(rfm.segments[c.dataIndex].net_spend))}`,
  } });
  draw("rfm-chart", rfm.segments.map((s) => s.segment), rfm.segments.map((s) => s.customers));
  $("#rfm-note").textContent = rfm.as_of
    ? `${whole.format(rfm.customers)} customers, scored as of ${rfm.as_of.slice(0, 10)}`
    : "No customers in this period";
  drawCohorts(cohorts.cohorts);
}

function drawBestSellers(buckets, grain) {
  $("#best-sellers-title").textContent = `Best seller per ${grain}` + (buckets.length === 12 ? " (latest 12)" : "");
  $("#best-sellers-table tbody").replaceChildren(...buckets.map((b) => {
    const row = document.createElement("tr");
    for (const [text, cls] of [[bucketLabel(b.bucket, grain)], [`${b.stock_code} ${(b.description || "").trim()}`],
                               [whole.format(b.quantity), "num"]]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      if (cls) cell.className = cls;
      row.append(cell);
    }
    return row;
  }));
}

function drawCohorts(cohorts) {
  const width = Math.max(0, ...cohorts.map((c) => c.retention.length));
  const head = document.createElement("tr");
  head.append(...["Cohort", "Customers", ...Array.from({ length: width }, (_, k) => `+${k}`)].map((text) => {
    const cell = document.createElement("th");
    cell.textContent = text;
    return cell;
  }));
  $("#cohort-table thead").replaceChildren(head);
  $("#cohort-table tbody").replaceChildren(...cohorts.map((cohort) => {
    const row = document.createElement("tr");
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = bucketLabel(`${cohort.cohort}-01 00:00:00`, "month");
    const size = document.createElement("td");
    size.textContent = whole.format(cohort.customers);
    row.append(name, size);
    cohort.retention.forEach((share, k) => {
      const cell = document.createElement("td");
      cell.className = "cell" + (share > 0.55 ? " dark" : "");
      cell.textContent = percent.format(share);
      cell.title = `${cohort.active[k]} of ${cohort.customers} ordered in month +${k}`;
      cell.dataset.share = share;
      cell.style.background = `rgba(37, 99, 235, ${(0.06 + 0.94 * share).toFixed(3)})`;
      row.append(cell);
    });
    return row;
  }));
}

// -- orchestration ------------------------------------------------------------------

function setStatus(text, kind) {
  const status = $("#status");
  status.textContent = text;
  status.className = `status ${kind || ""}`;
}

async function loadAll() {
  state.loading += 1;
  document.body.dataset.state = "loading";
  try {
    const summary = await loadSummary();
    await Promise.all([loadSales(), loadProfiles(), loadProducts(), loadInvoices(), loadCountries(), loadCustomers()]);
    state.version = summary.data_version;
    document.body.dataset.version = summary.data_version;
    setStatus(`live · ${whole.format(summary.data_version)} lines · updated ${new Date().toLocaleTimeString("en-GB")}`, "live");
  } catch (error) {
    setStatus(error.status === 503 ? `waiting for data: ${error.message}` : `error: ${error.message}`, "waiting");
  } finally {
    state.loading -= 1;
    if (!state.loading) document.body.dataset.state = state.version === null ? "waiting" : "ready";
  }
}

async function poll() {
  if (state.loading) return;
  try {
    const summary = await api("summary");
    if (summary.data_version !== state.version) await loadAll();
  } catch (error) {
    setStatus(error.status === 503 ? `waiting for data: ${error.message}` : `error: ${error.message}`, "waiting");
  }
}

function start() {
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("shopstream-key", $("#key").value.trim());
    $("#key-form").hidden = true;
    loadAll();
  });
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#4b5563";
  for (const button of document.querySelectorAll(".grains button")) {
    button.addEventListener("click", async () => {
      state.grain = button.dataset.grain;
      for (const other of document.querySelectorAll(".grains button")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      document.body.dataset.state = "loading";
      state.loading += 1;
      try { await loadSales(); } finally {
        state.loading -= 1;
        if (!state.loading) document.body.dataset.state = "ready";
      }
    });
  }
  for (const input of [$("#from"), $("#to")]) input.addEventListener("change", loadAll);
  $("#all-time").addEventListener("click", () => { $("#from").value = ""; $("#to").value = ""; loadAll(); });
  loadAll();
  setInterval(poll, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", start);
