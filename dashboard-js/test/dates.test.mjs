import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveRange, todayIn, hourIn, addDays, dayCount, isDay, timeGrain, RANGES } from '../src/dates.js';

const pick = ({ from, to, days, api }) => ({ from, to, days, api });

test('today and yesterday are single days; yesterday is the API\'s 1d', () => {
  assert.deepEqual(pick(resolveRange('day', '2026-03-01')), { from: '2026-03-01', to: '2026-03-01', days: 1, api: 'day' });
  assert.deepEqual(pick(resolveRange('yesterday', '2026-03-01')), { from: '2026-02-28', to: '2026-02-28', days: 1, api: '1d' });
});

test('7, 30 and 180 days end yesterday, as the API counts them', () => {
  assert.deepEqual(pick(resolveRange('7d', '2021-05-05')), { from: '2021-04-28', to: '2021-05-04', days: 7, api: '7d' });
  assert.deepEqual(pick(resolveRange('30d', '2021-05-05')), { from: '2021-04-05', to: '2021-05-04', days: 30, api: '30d' });
  assert.deepEqual(pick(resolveRange('180d', '2021-05-05')), { from: '2020-11-06', to: '2021-05-04', days: 180, api: '180d' });
});

test('this month is the whole calendar month, leap years included', () => {
  assert.deepEqual(pick(resolveRange('month', '2024-02-10')), { from: '2024-02-01', to: '2024-02-29', days: 29, api: 'month' });
  assert.deepEqual(pick(resolveRange('month', '2026-12-31')), { from: '2026-12-01', to: '2026-12-31', days: 31, api: 'month' });
});

test('last month is the calendar month before, across a year boundary too', () => {
  assert.deepEqual(pick(resolveRange('lastmonth', '2026-01-15')), { from: '2025-12-01', to: '2025-12-31', days: 31, api: '1mo' });
  assert.deepEqual(pick(resolveRange('lastmonth', '2023-03-01')), { from: '2023-02-01', to: '2023-02-28', days: 28, api: '1mo' });
});

test('custom ranges are sent as two dates, reversed pairs swapped, bad ones fall back to 30 days', () => {
  assert.deepEqual(pick(resolveRange('custom', '2026-11-26', '2026-11-01', '2026-11-03')), { from: '2026-11-01', to: '2026-11-03', days: 3, api: ['2026-11-01', '2026-11-03'] });
  assert.deepEqual(pick(resolveRange('custom', '2026-11-26', '2026-11-03', '2026-11-01')), { from: '2026-11-01', to: '2026-11-03', days: 3, api: ['2026-11-01', '2026-11-03'] });
  assert.equal(resolveRange('custom', '2026-11-26', '2026-02-30', '2026-03-01').api, '30d');
  assert.equal(resolveRange('bogus', '2026-11-26').api, '30d');
});

test('every offered range resolves', () => {
  for (const r of RANGES) assert.ok(isDay(resolveRange(r, '2026-11-26', '2026-11-01', '2026-11-02').from), r);
});

test('the chart is hourly for one day, daily otherwise', () => {
  assert.equal(timeGrain(resolveRange('day', '2026-11-26')), 'time:hour');
  assert.equal(timeGrain(resolveRange('custom', '2026-11-26', '2026-11-02', '2026-11-02')), 'time:hour');
  assert.equal(timeGrain(resolveRange('7d', '2026-11-26')), 'time:day');
});

test('today and the hour are those of the site\'s time zone', () => {
  const now = new Date('2026-11-26T23:30:00Z');
  assert.equal(todayIn('UTC', now), '2026-11-26');
  assert.equal(todayIn('Europe/Berlin', now), '2026-11-27');
  assert.equal(todayIn('America/New_York', now), '2026-11-26');
  assert.equal(hourIn('Europe/Berlin', now), '2026-11-27 00:00:00');
  assert.equal(hourIn('UTC', new Date('2026-11-26T09:05:00Z')), '2026-11-26 09:00:00');
  assert.equal(todayIn('Not/AZone', now), '2026-11-26');
});

test('day arithmetic and validation', () => {
  assert.equal(addDays('2024-02-28', 1), '2024-02-29');
  assert.equal(addDays('2024-03-01', -1), '2024-02-29');
  assert.equal(dayCount('2024-01-01', '2024-12-31'), 366);
  assert.ok(isDay('2024-02-29'));
  assert.ok(!isDay('2023-02-29'));
  assert.ok(!isDay('2024-2-01'));
  assert.ok(!isDay(null));
});
