// offencecam review UI: keyboard shortcuts, image zoom and pan, lease renewal.
// Loaded as a file (the CSP forbids inline script); no build step, no dependencies.
(function () {
  'use strict';

  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute('content') : '';
  }

  // Keyboard shortcuts: any element with data-key="k" is clicked (or focused, with
  // data-key-focus) when k is pressed outside a text field. Digits 1-9 pick a reason code.
  function typing(el) {
    if (!el) { return false; }
    var t = el.tagName;
    return t === 'TEXTAREA' || t === 'SELECT' || (t === 'INPUT' && el.type !== 'checkbox' && el.type !== 'radio' && el.type !== 'submit');
  }
  document.addEventListener('keydown', function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var key = ev.key;
    if (typing(document.activeElement)) {
      if (key === 'Escape') { document.activeElement.blur(); ev.preventDefault(); }
      if (key === 'Enter' && document.activeElement.id === 'plate') {
        ev.preventDefault();
        var c = document.getElementById('confirm');
        if (c) { c.click(); }
      }
      return;
    }
    if (key >= '1' && key <= '9') {
      var sel = document.getElementById('reason');
      var i = parseInt(key, 10);
      // A reason about an offence the case did not flag is disabled: the key does nothing.
      if (sel && i < sel.options.length && !sel.options[i].disabled) { sel.selectedIndex = i; ev.preventDefault(); }
      return;
    }
    var k = key.length === 1 ? key.toLowerCase() : key;
    if (k === '=') { k = '+'; }
    var el = document.querySelector('[data-key="' + (k === '"' ? '\\"' : k) + '"]');
    if (!el) { return; }
    ev.preventDefault();
    if (el.hasAttribute('data-key-focus')) { el.focus(); el.select && el.select(); return; }
    if (el.id === 'reject') {
      var r = document.getElementById('reason');
      if (r && !r.value) { r.focus(); return; }
    }
    el.click();
  });

  // A reject needs a reason code: focus the list instead of submitting without one.
  var form = document.getElementById('decide-form');
  if (form) {
    form.addEventListener('submit', function (ev) {
      var btn = ev.submitter;
      var r = document.getElementById('reason');
      if (btn && btn.value === 'reject' && r && !r.value) { ev.preventDefault(); r.focus(); }
    });
  }

  // Driver crops: shown at their own pixels; the caption gives their size. A camera view's
  // crops load only when its tab is shown (every load is an audited evidence view).
  var showDims = function (im) {
    var fig = im.closest('figure');
    var dims = fig ? fig.querySelector('.dims') : null;
    if (dims && im.naturalWidth) { dims.textContent = '(' + im.naturalWidth + ' × ' + im.naturalHeight + ' px)'; }
  };
  Array.prototype.forEach.call(document.querySelectorAll('img.driver-crop-img'), function (im) {
    im.addEventListener('load', function () { showDims(im); });
    if (im.complete) { showDims(im); }
  });
  var showPanel = function (view) {
    Array.prototype.forEach.call(document.querySelectorAll('.driver-panel'), function (p) {
      var on = p.dataset.view === view;
      p.classList.toggle('hidden', !on);
      if (!on) { return; }
      Array.prototype.forEach.call(p.querySelectorAll('img[data-src]'), function (im) {
        if (!im.getAttribute('src')) { im.setAttribute('src', im.dataset.src); }
      });
    });
  };

  // Zoom and pan on the evidence image; "o" switches between annotated and original.
  var viewer = document.getElementById('viewer');
  var img = document.getElementById('main-image');
  if (viewer && img) {
    var scale = 1, x = 0, y = 0, drag = null;
    var apply = function () { img.style.transform = 'translate(' + x + 'px,' + y + 'px) scale(' + scale + ')'; };
    var zoom = function (f, cx, cy) {
      var ns = Math.min(16, Math.max(1, scale * f));
      if (cx === undefined) { cx = viewer.clientWidth / 2; cy = viewer.clientHeight / 2; }
      x = cx - (cx - x) * (ns / scale);
      y = cy - (cy - y) * (ns / scale);
      scale = ns;
      if (scale === 1) { x = 0; y = 0; }
      apply();
    };
    viewer.addEventListener('wheel', function (ev) {
      ev.preventDefault();
      var r = viewer.getBoundingClientRect();
      zoom(ev.deltaY < 0 ? 1.25 : 0.8, ev.clientX - r.left, ev.clientY - r.top);
    }, { passive: false });
    viewer.addEventListener('mousedown', function (ev) {
      drag = { sx: ev.clientX - x, sy: ev.clientY - y };
      viewer.classList.add('dragging');
    });
    window.addEventListener('mouseup', function () { drag = null; viewer.classList.remove('dragging'); });
    window.addEventListener('mousemove', function (ev) {
      if (!drag) { return; }
      x = ev.clientX - drag.sx; y = ev.clientY - drag.sy; apply();
    });
    var bind = function (id, fn) { var b = document.getElementById(id); if (b) { b.addEventListener('click', fn); } };
    bind('zoom-in', function () { zoom(1.5); });
    bind('zoom-out', function () { zoom(1 / 1.5); });
    bind('zoom-reset', function () { scale = 1; x = 0; y = 0; apply(); });
    var label = document.getElementById('view-label');
    bind('toggle-original', function () {
      if (!img.dataset.original) { return; } // this view has no original for this role
      var showingOriginal = img.getAttribute('src') === img.dataset.original;
      img.setAttribute('src', showingOriginal ? img.dataset.annotated : img.dataset.original);
      if (label) { label.textContent = showingOriginal ? label.dataset.annotatedLabel : label.dataset.originalLabel; }
    });
    // Several camera views of the pass: a tab each, "v" for the next one.
    var tabs = Array.prototype.slice.call(document.querySelectorAll('.view-tab'));
    tabs.forEach(function (tab) {
      tab.addEventListener('click', function () {
        tabs.forEach(function (t) { t.classList.toggle('active', t === tab); });
        img.dataset.annotated = tab.dataset.annotated;
        img.dataset.original = tab.dataset.original;
        img.setAttribute('src', tab.dataset.annotated);
        if (label) { label.textContent = label.dataset.annotatedLabel; }
        showPanel(tab.dataset.view);
        scale = 1; x = 0; y = 0; apply();
      });
    });
    bind('next-view', function () {
      var i = tabs.findIndex(function (t) { return t.classList.contains('active'); });
      if (tabs.length) { tabs[(i + 1) % tabs.length].click(); }
    });
  }

  // Lease renewal while the case page is open; a refused renewal tells the reviewer at once.
  var body = document.body;
  var leaseURL = body.getAttribute('data-lease-url');
  if (leaseURL) {
    var every = parseInt(body.getAttribute('data-lease-every'), 10) || 60000;
    var timer = setInterval(function () {
      fetch(leaseURL, { method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF-Token': csrf() } })
        .then(function (res) {
          if (!res.ok) {
            clearInterval(timer);
            var lost = document.getElementById('lease-lost');
            if (lost) { lost.classList.remove('hidden'); }
          }
        })
        .catch(function () { /* network blip: the next tick retries */ });
    }, every);
  }
})();
