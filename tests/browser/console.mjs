// console.mjs - the web console in a real browser (Debian's chromium driven by playwright-core)
// against a running `coinhound serve` holding the demo scenario, as an analyst uses it: log in
// (changing the one-time password), see the attacker's offense first, open it, find the
// attacker, the instance group and a pool domain in the graph, open the attacker's timeline,
// run a search and see rows, close a benign offense with a reason, turn a rule off on the Rules
// page (confirming) and see it stay off after a reload, open the rule's tests and run it over a
// pasted record, see the intel feed (nobody serves it) failing on the Ingest page and ask for a
// pull now; then as a viewer, see that closing is not offered and that the API refuses it,
// and that the rule is shown off without a switch. Any error in the browser console fails
// the test. Screenshots of each step go to the artifacts directory.
//
// Usage: node console.mjs BASE_URL ARTIFACTS_DIR  (credentials in the environment:
//   CH_ADMIN_NAME, CH_ADMIN_OTP, CH_VIEWER_NAME, CH_VIEWER_OTP, CH_ATTACKER, CH_FEED)
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// playwright-core is the console's pinned dev dependency, installed in web/node_modules.
const web = fileURLToPath(new URL('../../web/package.json', import.meta.url));
const { chromium } = createRequire(web)('playwright-core');

const [base, artifacts] = process.argv.slice(2);
const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
mkdirSync(artifacts, { recursive: true });
const chromiumPath = process.env.CH_CHROMIUM || '/usr/bin/chromium';

const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
let failed = false;
const problems = [];

let current = null; // the page in use, for a screenshot when a step fails

// The browser logs every HTTP error answer as a console error. The only ones the walk-through
// expects: "who am I" before logging in (401), the viewer's refused close (403), and the
// response plan's run refused because the server does not enable execution (409).
const expected = (m) =>
  (/Failed to load resource: the server responded with a status of (401|403)/.test(m.text()) &&
    /\/api\/v1\/(session|offenses\/\d+)$/.test(m.location().url || '')) ||
  (/Failed to load resource: the server responded with a status of 409/.test(m.text()) &&
    /\/api\/v1\/response_plans\/\d+\/run$/.test(m.location().url || ''));

async function session(label) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  current = page;
  page.on('console', (m) => {
    if (m.type() === 'error' && !expected(m)) problems.push(`${label}: console: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.push(`${label}: page error: ${e}`));
  page.on('requestfailed', (r) => problems.push(`${label}: request failed: ${r.url()}`));
  return { ctx, page };
}

let n = 0;
const shot = (page, name) => page.screenshot({ path: `${artifacts}/${String(++n).padStart(2, '0')}-${name}.png`, fullPage: true });

function check(cond, what) {
  if (!cond) { failed = true; console.error(`FAIL: ${what}`); } else console.log(`ok: ${what}`);
}

async function login(page, name, otp, fresh) {
  await page.goto(base + '/');
  await page.getByLabel('Account').fill(name);
  await page.getByLabel('Password').fill(otp);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('form', { name: 'Choose a new password' }).waitFor();
  await page.getByLabel('One-time password').fill(otp);
  await page.getByLabel('New password', { exact: true }).fill(fresh);
  await page.getByLabel('New password again').fill(fresh);
  await page.getByRole('button', { name: 'Save' }).click();
  // The change ends the one-time session and hands out a new one: straight to the offenses.
  await page.getByRole('table', { name: 'Offenses' }).waitFor();
}

try {
  const attacker = env('CH_ATTACKER');
  // --- the analyst (admin account) ---
  const a = await session('admin');
  await login(a.page, env('CH_ADMIN_NAME'), env('CH_ADMIN_OTP'), 'a-Fresh-passphrase-for-the-test-1');
  await shot(a.page, 'offenses');
  const firstRow = a.page.getByRole('table', { name: 'Offenses' }).locator('tbody tr').first();
  check((await firstRow.innerText()).includes(attacker), `the first offense is the attacker's (${attacker})`);
  await firstRow.click();
  await a.page.getByRole('heading', { name: /^Offense \d+/ }).waitFor();
  await a.page.locator('.graph[data-ready="1"]').waitFor({ timeout: 20000 });
  await a.page.getByText(/The graph's \d+ nodes as a list/).click();
  const nodes = await a.page.locator('.graph-nodes li').allInnerTexts();
  check(nodes.some((t) => t.includes(attacker)), 'the graph shows the attacker');
  check(nodes.some((t) => /^instance/.test(t) && /×\d+/.test(t)), 'the graph shows the instance group');
  check(nodes.some((t) => /^domain/.test(t)), 'the graph shows a pool domain');
  await shot(a.page, 'offense');
  const evRows = await a.page.getByRole('table', { name: 'Evidence events' }).locator('tbody tr').count();
  check(evRows > 0, `the offense shows its evidence events (${evRows})`);
  const otl = a.page.getByRole('table', { name: 'Offense timeline' });
  await otl.waitFor({ timeout: 20000 });
  const otlText = await otl.innerText();
  check(/first/.test(otlText) && /CJ-/.test(otlText),
    `the offense's timeline shows the attacker's firsts and rule hits (${await otl.locator('tbody tr').count()} entries)`);
  check(await a.page.getByRole('img', { name: `${attacker}'s risk during the offense` }).locator('canvas').count() > 0,
    'the offense page draws the attacker\'s risk rising');

  // The response plan: proposed (a dry run), its steps shown; running it needs the server's
  // respond.execute, which this server does not set: the refusal is shown, nothing runs.
  await a.page.getByRole('button', { name: 'Propose a response plan' }).click();
  const steps = a.page.getByRole('table', { name: 'Response plan steps' });
  await steps.waitFor({ timeout: 30000 });
  const stepText = await steps.innerText();
  check(/UpdateAccessKey/.test(stepText) && /StopInstances|CreateSnapshot/.test(stepText),
    `the response plan deactivates keys and stops instances (${await steps.locator('tbody tr').count()} steps)`);
  await a.page.getByRole('button', { name: 'Run plan…' }).click();
  await a.page.getByRole('alertdialog').waitFor();
  await a.page.getByRole('button', { name: /^Run \d+ steps$/ }).click();
  const refusal = a.page.getByText(/respond\.execute/).first();
  await refusal.waitFor({ timeout: 20000 });
  check(/respond\.execute/.test(await refusal.innerText()), 'running the plan without respond.execute is refused with the reason');
  await shot(a.page, 'response-plan');

  await a.page.getByRole('link', { name: attacker }).first().click();
  await a.page.getByRole('heading', { name: `User ${attacker}` }).waitFor();
  await a.page.getByRole('table', { name: 'User timeline' }).waitFor();
  const tl = await a.page.getByRole('table', { name: 'User timeline' }).locator('tbody tr').count();
  check(tl > 0, `the attacker's timeline has entries (${tl})`);
  await shot(a.page, 'timeline');

  await a.page.getByRole('link', { name: 'Search' }).click();
  await a.page.getByLabel('Expression').fill(`user.name == "${attacker}"`);
  await a.page.getByRole('button', { name: 'Search' }).click();
  await a.page.getByRole('table', { name: 'Search results' }).waitFor({ timeout: 30000 });
  const rows = await a.page.getByRole('table', { name: 'Search results' }).locator('tbody tr').count();
  check(rows > 0, `a search for the attacker returns rows (${rows})`);
  await shot(a.page, 'search');

  // Close a benign offense (the last one of the list, not the attacker's) with a reason.
  await a.page.getByRole('link', { name: 'Offenses' }).click();
  const last = a.page.getByRole('table', { name: 'Offenses' }).locator('tbody tr').last();
  check(!(await last.innerText()).includes(attacker), 'the lowest offense is not the attacker\'s');
  await last.click();
  const heading = await a.page.getByRole('heading', { name: /^Offense \d+/ }).innerText();
  const benign = heading.match(/Offense (\d+)/)[1];
  await a.page.getByLabel('Closing reason').selectOption({ index: 1 });
  a.page.once('dialog', (d) => d.accept());
  await a.page.getByRole('button', { name: 'Close offense' }).click();
  await a.page.getByText(/closing is final/).waitFor();
  check((await a.page.locator('dl.summary').innerText()).includes('closed'), `offense ${benign} is closed with a reason`);
  await shot(a.page, 'closed');

  // Rules: turn CJ-AUTH-05 off (with confirmation); it stays off after a reload.
  await a.page.getByRole('link', { name: 'Rules' }).click();
  const sw = a.page.getByLabel('enable CJ-AUTH-05');
  await sw.waitFor();
  check(await sw.isChecked(), 'CJ-AUTH-05 is on at first');
  await sw.click();
  await a.page.getByRole('alertdialog').waitFor();
  check(await sw.isChecked(), 'nothing changes before the confirmation');
  await a.page.getByRole('button', { name: 'Disable CJ-AUTH-05' }).click();
  await a.page.getByRole('status').filter({ hasText: 'CJ-AUTH-05 is now disabled' }).waitFor();
  check(!(await sw.isChecked()), 'CJ-AUTH-05 is off once confirmed');
  await a.page.reload();
  await a.page.getByLabel('enable CJ-AUTH-05').waitFor();
  check(!(await a.page.getByLabel('enable CJ-AUTH-05').isChecked()), 'CJ-AUTH-05 is still off after a reload');
  await shot(a.page, 'rules');
  // The rule's tests, and a test run over a pasted record (a console login without MFA).
  await a.page.getByRole('table', { name: 'Rules' }).locator('tbody tr').filter({ hasText: 'CJ-AUTH-05' }).locator('td').first().click();
  const cases = a.page.getByRole('table', { name: 'Tests of CJ-AUTH-05' }).locator('tbody tr');
  await cases.first().waitFor();
  check(await cases.count() >= 2, `the rule's test cases are listed (${await cases.count()})`);
  const record = { eventVersion: '1.09', eventTime: '2024-06-03T10:00:00Z', eventSource: 'signin.amazonaws.com',
    eventName: 'ConsoleLogin', awsRegion: 'us-east-1', sourceIPAddress: '81.2.69.142', eventID: 'evt-browser-1',
    userIdentity: { type: 'IAMUser', accountId: '111122223333', userName: 'frank', arn: 'arn:aws:iam::111122223333:user/frank' },
    responseElements: { ConsoleLogin: 'Success' }, additionalEventData: { MFAUsed: 'No' }, recipientAccountId: '111122223333' };
  await a.page.getByLabel(/Records to test/).fill(JSON.stringify([record]));
  await a.page.getByRole('button', { name: 'Run the rule' }).click();
  const verdict = await a.page.getByRole('status').filter({ hasText: /Fired|Did not fire/ }).innerText();
  check(/^Fired 1 time\(s\) on record\(s\) 0; its expression selects record\(s\) 0 over 1/.test(verdict), `the rule test fires on the pasted record (${verdict})`);
  await shot(a.page, 'rule-test');
  // The ingest page lists the intel feed (nobody serves it: it fails, with its reason), and an
  // admin asks for a pull now.
  const feed = env('CH_FEED');
  await a.page.getByRole('link', { name: 'Ingest' }).click();
  const feedRow = a.page.getByRole('table', { name: 'Intel feeds' }).locator('tbody tr').filter({ hasText: feed });
  await feedRow.filter({ hasText: 'failed' }).waitFor({ timeout: 20000 });
  check(/failed/.test(await feedRow.innerText()), `the feed ${feed} shows failed with its reason`);
  await a.page.getByRole('button', { name: `Pull ${feed} now` }).click();
  await a.page.getByRole('status').filter({ hasText: `Pull of ${feed} requested` }).waitFor();
  await shot(a.page, 'ingest-feeds');
  await a.ctx.close();

  // --- the viewer ---
  const v = await session('viewer');
  await login(v.page, env('CH_VIEWER_NAME'), env('CH_VIEWER_OTP'), 'a-Fresh-passphrase-for-the-viewer-2');
  await v.page.getByRole('table', { name: 'Offenses' }).locator('tbody tr').first().click();
  await v.page.getByRole('heading', { name: /^Offense \d+/ }).waitFor();
  check(await v.page.getByRole('button', { name: 'Close offense' }).count() === 0, 'a viewer is not offered to close');
  check(await v.page.getByRole('button', { name: 'Propose a response plan' }).count() === 0,
    'a viewer is not offered a response plan');
  const status = await v.page.evaluate(async (id) => {
    const s = await (await fetch('/api/v1/session')).json();
    const r = await fetch('/api/v1/offenses/' + id, { method: 'POST', headers: { 'Content-Type': 'application/json',
      'X-CSRF-Token': s.csrf_token, 'If-Match': '*' }, body: JSON.stringify({ status: 'closed', closing_reason: 'x' }) });
    return r.status;
  }, benign);
  check(status === 403, `the API refuses a viewer's close (${status})`);
  await shot(v.page, 'viewer');
  await v.page.getByRole('link', { name: 'Rules' }).click();
  const row = v.page.getByRole('table', { name: 'Rules' }).locator('tbody tr').filter({ hasText: 'CJ-AUTH-05' });
  await row.waitFor();
  check(await v.page.getByLabel('enable CJ-AUTH-05').count() === 0, 'a viewer gets no rule switch');
  check(/\bno\b/.test(await row.innerText()), 'the viewer sees CJ-AUTH-05 off');
  await v.ctx.close();
} catch (e) {
  failed = true;
  console.error('FAIL:', e);
  if (current) await current.screenshot({ path: `${artifacts}/failure.png`, fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
for (const p of problems) console.error('FAIL:', p);
process.exit(failed || problems.length ? 1 : 0);
