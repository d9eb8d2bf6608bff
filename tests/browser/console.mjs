// Drives the operator console in Debian's Chromium with playwright-core.
// Run by tests/integration/browser.rs, which starts the control plane and
// passes what to check in the environment; prints one line per check and
// exits non-zero on the first that fails.
import { createRequire } from 'node:module';

const require = createRequire(process.env.PLAYWRIGHT_DIR + '/');
const { chromium } = require('playwright-core');

const env = (name) => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`missing ${name}`);
  return value;
};
const base = env('BASE_URL');
const phase = env('PHASE');
const shots = env('SCREENSHOTS');

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
  console.log(`ok: ${what}`);
}

// Click `selector` and wait for the page it leads to.
async function submit(page, selector) {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(selector)]);
}

async function signIn(page, token) {
  await page.goto(`${base}/ui/`);
  await page.fill('#token', token);
  await submit(page, 'button[type=submit]');
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  if (phase === 'signin') {
    // An agent's token never opens the console.
    await signIn(page, env('AGENT_TOKEN'));
    check(await page.isVisible('.problem'), 'an agent token is refused');
    check((await context.cookies()).length === 0, 'no cookie for an agent token');

    const first = await page.goto(`${base}/ui/`);
    const csp = first.headers()['content-security-policy'] || '';
    check(csp.includes("default-src 'none'") && csp.includes("frame-ancestors 'none'"), 'a strict CSP');
    await signIn(page, env('ADMIN_TOKEN'));
    const [cookie] = await context.cookies();
    check(cookie && cookie.httpOnly && cookie.sameSite === 'Strict' && cookie.path === '/ui', 'the session cookie is HttpOnly, SameSite=Strict, Path=/ui');
    for (const server of env('SERVERS').split(',')) {
      const state = await page.textContent(`tr[data-server="${server}"] td:first-of-type`);
      check(state === 'ready', `${server} is ready`);
    }
    await page.screenshot({ path: `${shots}/overview.png`, fullPage: true });

    // The live tail: a call made now appears on the audit page as it is
    // recorded (server-sent events).
    await submit(page, 'a[href="/ui/audit"]');
    // Subscribed once the stream is open.
    await page.waitForSelector('#tail[data-open="yes"]', { state: 'attached' });
    // Through the agents' address: the console's is another one.
    const made = await fetch(`${env('AGENT_URL')}/invoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${env('AGENT_TOKEN')}` },
      body: JSON.stringify({ action: 'read_positions', payload: { account: 'ACC-002' } }),
    });
    const { trace_id: live } = await made.json();
    await page.waitForSelector(`#tail li:has-text("${live}")`, { timeout: 10000 });
    check(true, 'a new record appears in the live tail');

    // The call made through REST, found by its trace id, and its timeline.
    await page.fill('#trace_id', env('TRACE_ID'));
    await submit(page, 'form.filters button');
    const rows = await page.locator('#records tbody tr').count();
    check(rows >= 1, 'the call is found by its trace id');
    await submit(page, `a[href="/ui/trace/${env('TRACE_ID')}"]`);
    const timeline = await page.textContent('#timeline');
    check(timeline.includes('call') && timeline.includes(env('TRACE_TOOL')), 'the timeline shows the call');
    const bars = await page.locator('#time-axis g').count();
    check(bars >= 2 && await page.isVisible('#time-axis rect'), `the trace is drawn on a time axis (${bars} bars: the call and its leg)`);
    await page.screenshot({ path: `${shots}/trace.png`, fullPage: true });

    // Who can see what: exactly what /tools returns for that agent.
    await page.goto(`${base}/ui/access`);
    await page.selectOption('#agent', env('ACCESS_AGENT'));
    await submit(page, 'main form button');
    const shown = await page.locator('#tools li').allTextContents();
    check(JSON.stringify(shown) === env('ACCESS_TOOLS'), `who-can-see-what matches /tools: ${shown}`);

    // The playground: the notional-limit denial with its reason.
    await page.goto(`${base}/ui/playground`);
    await page.selectOption('#agent', 'agent-7');
    await page.selectOption('#tool', 'execute_trade');
    await page.fill('#arguments', '{"account": "ACC-001", "symbol": "NVDA", "side": "buy", "quantity": 20000, "limit_price": 100}');
    await submit(page, 'main form button');
    const decision = await page.textContent('#decision');
    check(decision.includes('deny') && decision.includes('order notional 2000000 exceeds the desk limit of 1000000'), 'the playground shows the notional-limit denial');
    await page.screenshot({ path: `${shots}/playground.png`, fullPage: true });

    // Charts of the last hour, drawn without any script or outside service.
    await page.goto(`${base}/ui/charts`);
    check(await page.isVisible('#calls-per-minute rect'), 'calls per minute are drawn');
    check(await page.isVisible('#latency-per-tool g'), 'latency per tool is drawn');
    await page.screenshot({ path: `${shots}/charts.png`, fullPage: true });

    // A laptop's width and a wide monitor's: no page scrolls sideways.
    for (const width of [1024, 1920]) {
      await page.setViewportSize({ width, height: 900 });
      for (const path of ['/ui/', '/ui/audit', `/ui/trace/${env('TRACE_ID')}`, '/ui/access', '/ui/playground', '/ui/charts']) {
        await page.goto(`${base}${path}`);
        const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
        check(fits, `${path} fits ${width} px`);
      }
    }
    await page.goto(`${base}/ui/`);

    // Keyboard: the sign-out button is reachable with Tab.
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement && document.activeElement.tagName === 'A'), 'the navigation takes the keyboard focus');
  } else if (phase === 'down') {
    await signIn(page, env('ADMIN_TOKEN'));
    const state = await page.textContent(`tr[data-server="${env('DOWN')}"] td:first-of-type`);
    check(state === 'down', `${env('DOWN')} is down`);
  }
} finally {
  await browser.close();
}
