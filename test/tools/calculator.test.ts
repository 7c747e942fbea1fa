import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluate } from '../../src/tools/index.js';

describe('calculator', () => {
  it('evaluates arithmetic with the usual precedence and associativity', () => {
    assert.equal(evaluate('17*23'), 391);
    assert.equal(evaluate('1 + 2 * 3'), 7);
    assert.equal(evaluate('(1 + 2) * 3'), 9);
    assert.equal(evaluate('2 ^ 3 ^ 2'), 512, 'power is right-associative');
    assert.equal(evaluate('2 ** 10'), 1024);
    assert.equal(evaluate('-3 - -2'), -1);
    assert.equal(evaluate('10 % 4'), 2);
    assert.equal(evaluate('7 / 2'), 3.5);
    assert.equal(evaluate('1.5e3 + .5'), 1500.5);
    assert.equal(evaluate('6 × 7 ÷ 2'), 21);
  });

  it('knows a fixed set of functions and constants', () => {
    assert.equal(evaluate('sqrt(144) + abs(-2)'), 14);
    assert.equal(evaluate('max(1, 5, 3) - min(4, 2)'), 3);
    assert.equal(evaluate('round(pi * 100) / 100'), 3.14);
    assert.equal(evaluate('log(1000)'), 3);
    assert.equal(evaluate('ln(e)'), 1);
  });

  it('refuses anything that is not arithmetic, naming the position', () => {
    assert.throws(() => evaluate('process.exit(1)'), /unknown name "process"/);
    assert.throws(() => evaluate('constructor("x")'), /unknown function "constructor"/);
    assert.throws(() => evaluate('1 +'), /unexpected end/);
    assert.throws(() => evaluate('2 3'), /unexpected "3" at position 3/);
    assert.throws(() => evaluate('1/0'), /no finite value/);
  });

  it('bounds length and nesting so hostile input cannot exhaust the stack', () => {
    assert.throws(() => evaluate('('.repeat(200) + '1' + ')'.repeat(200)), /nested too deeply/);
    assert.throws(() => evaluate('-'.repeat(500) + '1'), /nested too deeply/);
    assert.throws(() => evaluate('1+'.repeat(600) + '1'), /longer than 1000/);
  });
});
