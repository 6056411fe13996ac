// The console in a real browser: Debian's Chromium, headless, driven by playwright-core.
//
//   node tests/console/console.test.mjs HTTP_HOST:PORT facts.json SCREENSHOT_DIR
//
// facts.json is what tests/console/api_facts.py read from the gRPC API of the same server.
// Every page is loaded at 1280×800 and at 390×844 with no console error and no failed
// request, and screenshotted; the numbers on the pages (aliases, versions, ROC AUC, rows,
// thresholds, the DeLong p-value, each version's campaign profit) are the API's; every
// chart is an element with role="img" and its aria-label, with as many points as the API's
// curve has. On the compare page a campaign typed into its form redraws the profit curves
// with the numbers Compare gives for that campaign. The experiment page shows each arm's
// customers, churn rate and ROC curve and each comparison's p-values as ExperimentReport.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [address, factsFile, screenshots] = process.argv.slice(2);
if (!address || !factsFile || !screenshots) {
  console.error('usage: console.test.mjs HTTP_HOST:PORT facts.json SCREENSHOT_DIR');
  process.exit(2);
}
const facts = JSON.parse(readFileSync(factsFile, 'utf8'));
const base = `http://${address}`;
const model = facts.model;
const viewports = [
  { name: 'desktop', width: 1280, height: 800 },
  { name: 'phone', width: 390, height: 844 },
];
const pages = [
  { name: 'models', path: '/' },
  { name: 'model', path: `/models/${model}` },
  ...facts.versions.map((v) => ({ name: `version-${v.version}`, path: `/models/${model}/versions/${v.version}` })),
  { name: 'compare', path: `/models/${model}/compare` },
  { name: 'monitoring', path: `/models/${model}/monitoring` },
  { name: 'experiment', path: `/models/${model}/experiments/${facts.experiment.alias}` },
];
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const profile = mkdtempSync(join(tmpdir(), 'churnserve-console-'));
mkdirSync(screenshots, { recursive: true });

const latest = (version, dataset) =>
  facts.evaluations.find((e) => e.version === version && (dataset === undefined || e.dataset === dataset));

const checks = {
  async models(page) {
    for (const summary of facts.models) {
      const row = page.locator(`tr[data-model="${summary.name}"]`);
      assert.equal(await row.count(), 1, `a row for ${summary.name}`);
      for (const [alias, version] of Object.entries(summary.aliases)) {
        const chip = row.locator(`[data-alias="${alias}"]`);
        assert.equal(await chip.getAttribute('data-version'), String(version), `${alias} points at v${version}`);
        assert.equal((await chip.textContent()).trim(), `${alias} → v${version}`);
      }
    }
  },
  async model(page) {
    const rows = page.locator('#versions tbody tr');
    assert.equal(await rows.count(), facts.versions.length, 'one row per version');
    for (const version of facts.versions) {
      const row = page.locator(`#versions tr[data-version="${version.version}"]`);
      assert.equal((await row.locator('td.aliases').textContent()).trim(), version.aliases.join(', '));
      const evaluation = latest(version.version);
      const shown = (await row.locator('td.roc-auc').textContent()).trim();
      assert.equal(shown, evaluation ? evaluation.roc_auc.toFixed(4) : '—', `v${version.version} ROC AUC`);
    }
    assert.ok((await page.locator('#audit tbody tr').count()) > 0, 'the audit history');
    const experiment = page.locator(`#experiments li[data-alias="${facts.experiment.alias}"] a`);
    assert.equal(await experiment.getAttribute('href'), `/models/${model}/experiments/${facts.experiment.alias}`);
  },
  async version(page, number) {
    const version = facts.versions.find((v) => v.version === number);
    assert.equal((await page.locator('#threshold').textContent()).trim(), String(version.threshold));
    const evaluations = facts.evaluations.filter((e) => e.version === number);
    assert.equal(await page.locator('#evaluations tbody tr').count(), evaluations.length);
    for (const evaluation of evaluations) {
      const row = page.locator(`#evaluations tr[data-evaluation="${evaluation.evaluation_id}"]`);
      assert.equal((await row.locator('td.rows').textContent()).trim(), String(evaluation.rows));
      assert.equal((await row.locator('td.threshold').textContent()).trim(), String(evaluation.threshold));
      assert.equal((await row.locator('td.roc-auc').textContent()).trim(), evaluation.roc_auc.toFixed(4));
      assert.equal((await row.locator('td.empc').textContent()).trim(), evaluation.empc === null ? '—' : evaluation.empc.toFixed(4));
    }
    const shown = evaluations[0];
    await chartPoints(page, 'ROC curve', `v${number}`, shown.roc_points);
    await chartPoints(page, 'Precision-recall curve', `v${number}`, shown.pr_points);
    await chartPoints(page, 'Calibration', `v${number}`, shown.calibration_points);
    await chartPoints(page, 'Lift', `v${number}`, shown.lift_points);
    await chartPoints(page, 'Cumulative gain', `v${number}`, shown.lift_points);
    const importance = page.locator('svg[role="img"][aria-label="Feature importance"]');
    assert.equal(await importance.count(), 1, 'feature importance chart');
    assert.equal(await importance.locator('rect').count(), version.features.length, 'a bar per raw feature');
    assert.equal(await page.locator('#schema tbody tr').count(), version.features.length);
  },
  async compare(page) {
    assert.equal((await page.locator('#dataset').textContent()).trim(), facts.dataset);
    assert.equal((await page.locator('#delong .p-value').textContent()).trim(), facts.p_value.toFixed(4));
    assert.equal((await page.locator('#delong .paired').textContent()).trim(), String(facts.paired_rows));
    for (const number of [1, 2]) {
      const evaluation = latest(number, facts.dataset);
      const row = page.locator(`#headline tr[data-version="${number}"]`);
      assert.equal((await row.locator('td.roc-auc').textContent()).trim(), evaluation.roc_auc.toFixed(4));
      assert.equal((await row.locator('td.rows').textContent()).trim(), String(evaluation.rows));
      await chartPoints(page, 'ROC curve', `v${number}`, evaluation.roc_points);
      await chartPoints(page, 'Precision-recall curve', `v${number}`, evaluation.pr_points);
    }
    assert.ok((await page.locator('#thresholds tbody tr').count()) >= 2, 'threshold suggestions');
    await profitFigures(page, facts.profits);
    for (const [field, value] of Object.entries(facts.campaign)) {
      await page.fill(`#campaign input[name="${field}"]`, String(value));
    }
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#campaign button[type="submit"]')]);
    await settled(page);
    await profitFigures(page, facts.campaign_profits);
    assert.equal((await page.locator('#empc-difference .difference').textContent()).trim(),
      `${facts.campaign_empc_difference >= 0 ? '+' : ''}${facts.campaign_empc_difference.toFixed(4)}`);
    const size = page.viewportSize();
    await page.locator('#profit-campaign').screenshot({ path: join(screenshots, `compare-profit-${size.width}x${size.height}.png`) });
  },
  async monitoring(page) {
    const production = facts.models.find((m) => m.name === model).aliases.production;
    const features = facts.versions.find((v) => v.version === production).features.length;
    const drift = page.locator(`section[data-version="${production}"] svg[role="img"][aria-label="Drift (PSI by feature)"]`);
    assert.equal(await drift.count(), 1, `the drift of v${production}, which served the scores`);
    assert.equal(await drift.locator('rect').count(), features, 'a PSI bar per raw feature');
    const shadow = page.locator('#shadows tr[data-alias="production"]');
    assert.equal((await shadow.locator('td.shadow-version').textContent()).trim(), 'v2');
    assert.ok(Number((await shadow.locator('td.compared').textContent()).trim()) > 0, 'the shadow compared scores');
  },
};

// The experiment's arms, ROC curves, p-values and sample size, as ExperimentReport has them.
checks.experiment = async (page) => {
  for (const arm of facts.experiment.arms) {
    const row = page.locator(`#arms tr[data-version="${arm.version}"]`);
    assert.equal((await row.locator('td.weight').textContent()).trim(), String(arm.weight));
    assert.equal((await row.locator('td.customers').textContent()).trim(), String(arm.customers), `v${arm.version} customers`);
    assert.equal((await row.locator('td.labelled').textContent()).trim(), String(arm.labelled));
    assert.equal((await row.locator('td.churn-rate').textContent()).trim(), arm.churn_rate.toFixed(4));
    await chartPoints(page, 'ROC curve', `v${arm.version}`, arm.roc_points);
  }
  for (const comparison of facts.experiment.comparisons) {
    const row = page.locator(`#comparisons tr[data-version="${comparison.version}"]`);
    assert.equal((await row.locator('td.rate-p').textContent()).trim(), comparison.churn_rate_p_value.toFixed(4));
    assert.equal((await row.locator('td.auc-p').textContent()).trim(), comparison.roc_auc_p_value.toFixed(4));
    assert.equal((await row.locator('td.needed').textContent()).trim(),
      comparison.labelled_needed > 0 ? String(comparison.labelled_needed) : '—');
  }
  assert.equal(await page.locator('p.reading').count(), facts.experiment.comparisons.length, 'a reading per comparison');
};

// Each version's EMPC, its fraction and the profit curve with its EMPC mark, as the API has them.
async function profitFigures(page, profits) {
  for (const [version, profit] of Object.entries(profits)) {
    const row = page.locator(`#profit tr[data-version="${version}"]`);
    assert.equal((await row.locator('td.empc').textContent()).trim(), profit.empc.toFixed(4), `v${version} EMPC`);
    assert.equal((await row.locator('td.empc-fraction').textContent()).trim(), profit.empc_fraction.toFixed(4));
    assert.equal((await row.locator('td.mpc').textContent()).trim(), profit.mpc.toFixed(4));
    await chartPoints(page, 'Profit curve', `v${version}`, profit.points);
  }
  const marks = page.locator('svg[role="img"][aria-label="Profit curve"] line.mark');
  assert.equal(await marks.count(), Object.keys(profits).length, 'a mark at each EMPC fraction');
}

// Reloads while a comparison is still computed in the background (the page says so).
async function settled(page) {
  let response = null;
  for (let wait = 0; wait < 120 && (await page.locator('p.note', { hasText: "DeLong's test" }).count()) > 0; wait++) {
    await page.waitForTimeout(500);
    response = await page.reload({ waitUntil: 'load' });
  }
  return response;
}

async function chartPoints(page, label, series, expected) {
  const chart = page.locator(`svg[role="img"][aria-label="${label}"]`);
  assert.equal(await chart.count(), 1, `one ${label} chart`);
  const group = chart.locator(`g[data-series="${series}"]`);
  assert.equal(await group.count(), 1, `${label}: series ${series}`);
  assert.equal(await group.locator('circle').count(), expected, `${label} ${series}: one point per API point`);
  const hover = await group.locator('circle title').first().textContent();
  assert.ok(hover.startsWith(series), `${label}: hover text ${hover}`);
  const tableRows = page.locator(`details.data:has(summary:text-is("Data table: ${label}")) tbody tr td:first-child:text-is("${series}")`);
  assert.equal(await tableRows.count(), expected, `${label} ${series}: the data table repeats every point`);
}

// A fresh profile, removed at the end: nothing from an earlier run is cached.
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run',
  ],
});
let failures = 0;
try {
  for (const viewport of viewports) {
    for (const target of pages) {
      const page = await context.newPage();
      await page.setViewportSize({ width: viewport.width, height: viewport.height });
      const problems = [];
      page.on('console', (message) => message.type() === 'error' && problems.push(`console: ${message.text()}`));
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      page.on('requestfailed', (request) => problems.push(`failed: ${request.url()} ${request.failure()?.errorText}`));
      page.on('response', (response) => response.status() >= 400 && problems.push(`HTTP ${response.status()}: ${response.url()}`));
      const label = `${target.name} at ${viewport.width}×${viewport.height}`;
      try {
        const first = await page.goto(base + target.path, { waitUntil: 'load' });
        const response = (await settled(page)) ?? first;
        assert.equal(response.status(), 200, `${label}: status`);
        const number = target.name.startsWith('version-') ? Number(target.name.slice(8)) : undefined;
        await (number === undefined ? checks[target.name](page) : checks.version(page, number));
        const charts = await page.locator('svg[role="img"]').evaluateAll((svgs) =>
          svgs.map((svg) => ({ label: svg.getAttribute('aria-label'), width: svg.getBoundingClientRect().width })));
        for (const chart of charts) {
          assert.ok(chart.label, 'every chart is named');
          assert.ok(chart.width > 0 && chart.width <= viewport.width, `${chart.label} fits the ${viewport.width} px screen`);
        }
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 1, `${label}: the page scrolls sideways by ${overflow} px`);
        assert.deepEqual(problems, [], `${label}: no console error or failed request`);
        await page.screenshot({ path: join(screenshots, `${target.name}-${viewport.width}x${viewport.height}.png`), fullPage: target.name === 'compare' ? false : true });
        console.log(`ok   ${label} (${charts.length} charts)`);
      } catch (error) {
        failures += 1;
        console.log(`FAIL ${label}: ${error.message}`);
      }
      await page.close();
    }
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
if (failures > 0) {
  console.log(`${failures} page checks failed`);
  process.exit(1);
}
console.log(`every page passed at ${viewports.map((v) => `${v.width}×${v.height}`).join(' and ')}; screenshots in ${screenshots}`);
