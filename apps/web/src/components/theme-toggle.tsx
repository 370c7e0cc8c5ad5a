'use client';
import { useEffect, useState } from 'react';

type Theme = 'system' | 'light' | 'dark';

/** Cycles system → light → dark; "system" follows prefers-color-scheme. */
export function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>('system');
  useEffect(() => {
    const t = localStorage.getItem('tern-theme');
    if (t === 'light' || t === 'dark') setTheme(t);
  }, []);
  const next = (t: Theme): Theme => (t === 'system' ? 'light' : t === 'light' ? 'dark' : 'system');
  const apply = (t: Theme) => {
    setTheme(t);
    if (t === 'system') {
      localStorage.removeItem('tern-theme');
      delete document.documentElement.dataset.theme;
    } else {
      localStorage.setItem('tern-theme', t);
      document.documentElement.dataset.theme = t;
    }
  };
  return (
    <button type="button" onClick={() => apply(next(theme))} aria-label={`Theme: ${theme}. Switch to ${next(theme)}`} data-testid="theme-toggle">
      Theme: {theme}
    </button>
  );
}
