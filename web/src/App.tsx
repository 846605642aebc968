import { Spin } from 'antd';
import { lazy, Suspense, type ReactNode } from 'react';
import { BrowserRouter, Navigate, Route, Routes, useLocation } from 'react-router';
import { AuthProvider, useAuth } from './auth/AuthContext';
import { Pending } from './pages/Pending';
import { SignIn } from './pages/SignIn';
import { SignUp } from './pages/SignUp';
import { ThemeProvider } from './theme/ThemeContext';

const ChatPage = lazy(() => import('./chat/ChatPage'));
const SettingsPage = lazy(() => import('./settings/SettingsPage'));
const ModelsPage = lazy(() => import('./models/ModelsPage'));
const AdminPage = lazy(() => import('./admin/AdminPage'));
const SeoPage = lazy(() => import('./seo/SeoPage'));
const FilesPage = lazy(() => import('./files/FilesPage'));

function Loading() {
  return (
    <div className="center-fill" role="status" aria-label="Loading">
      <Spin size="large" />
    </div>
  );
}

function RequireAuth({ children }: { children: ReactNode }) {
  const { session } = useAuth();
  const location = useLocation();
  if (session.status === 'loading') return <Loading />;
  if (session.status === 'signed-out') {
    return <Navigate to="/signin" replace state={{ from: location.pathname + location.search }} />;
  }
  return <Suspense fallback={<Loading />}>{children}</Suspense>;
}

function GuestOnly({ children }: { children: ReactNode }) {
  const { session } = useAuth();
  if (session.status === 'loading') return <Loading />;
  if (session.status === 'signed-in') return <Navigate to="/" replace />;
  return <>{children}</>;
}

export function AppRoutes() {
  return (
    <Routes>
      <Route path="/signin" element={<GuestOnly><SignIn /></GuestOnly>} />
      <Route path="/signup" element={<GuestOnly><SignUp /></GuestOnly>} />
      <Route path="/pending" element={<Pending />} />
      <Route path="/settings" element={<RequireAuth><SettingsPage /></RequireAuth>} />
      <Route path="/models" element={<RequireAuth><ModelsPage /></RequireAuth>} />
      <Route path="/admin/*" element={<RequireAuth><AdminPage /></RequireAuth>} />
      <Route path="/seo/*" element={<RequireAuth><SeoPage /></RequireAuth>} />
      <Route path="/files" element={<RequireAuth><FilesPage /></RequireAuth>} />
      {/* One chat page for both paths: sending the first message of a new chat moves from
          `/` to `/c/:id` while its answer streams, which must not remount the page. */}
      <Route element={<RequireAuth><ChatPage /></RequireAuth>}>
        <Route path="/" element={null} />
        <Route path="/c/:conversationId" element={null} />
      </Route>
      <Route path="*" element={<Navigate to="/" replace />} />
    </Routes>
  );
}

export default function App() {
  return (
    <ThemeProvider>
      <AuthProvider>
        <BrowserRouter>
          <AppRoutes />
        </BrowserRouter>
      </AuthProvider>
    </ThemeProvider>
  );
}
