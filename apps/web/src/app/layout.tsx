import type { Metadata } from 'next';
import type { ReactNode } from 'react';
import { Providers } from '../components/providers.tsx';
import './globals.css';

export const metadata: Metadata = { title: 'Tern console', description: 'Tern service mesh console' };

// Applied before first paint so a chosen theme never flashes the other one.
const themeScript = `try{var t=localStorage.getItem('tern-theme');if(t==='light'||t==='dark')document.documentElement.dataset.theme=t}catch(e){}`;

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en" suppressHydrationWarning>
      <head>
        <script dangerouslySetInnerHTML={{ __html: themeScript }} />
      </head>
      <body>
        <Providers>{children}</Providers>
      </body>
    </html>
  );
}
